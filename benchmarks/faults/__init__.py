"""`python -m benchmarks.faults`: the fault soak (and the fault suite's harness)."""
