"""Gateway throughput benchmark (`python -m benchmarks.gateway`)."""
