"""Notifier latency benchmark (`python -m benchmarks.notify`)."""
