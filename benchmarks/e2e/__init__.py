"""`python -m benchmarks.e2e`: the whole system on one machine, ramped with
real-time simulated wearables until it saturates."""
