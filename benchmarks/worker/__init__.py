"""`python -m benchmarks.worker`: readings/s and latency of one `vitalstream worker`."""
