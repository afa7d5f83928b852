"""Sinks: where the stream's results leave Kafka (InfluxDB)."""
