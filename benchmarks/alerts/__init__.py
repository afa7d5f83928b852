"""Alert-quality evaluation: `python -m benchmarks.alerts`.

A seeded simulated cohort (every scenario of `devices.simulator`) runs
offline through the production decision path (gateway `Ingestor` ->
`ReadingBatch` json -> `PatientProcessor` with `AlertMachine(DEFAULT_RULES)`)
and through a plain single-parameter threshold baseline; both are scored
against the simulator's ground truth. docs/alert-evaluation.md has the
method and the latest numbers.

Modules: cohort (run the cohort), baseline (the threshold alarm),
reference (NEWS2 of the simulator's own signal), evaluate (scoring,
pure functions), report (table and JSON).
"""
