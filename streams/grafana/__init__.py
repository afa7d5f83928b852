"""Grafana provisioning as code: the InfluxDB schema the sink writes, and the dashboards over it."""
