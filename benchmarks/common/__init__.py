"""Helpers shared by the service benchmarks (worker, e2e): isolated topics and
settings, synthetic load, process control and /proc accounting, InfluxDB
queries, percentiles and tables."""
