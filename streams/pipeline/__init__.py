"""Per-patient stream processing, without Faust: input parsing, state, processing, outputs.

`streams.worker` wires it into Faust agents and tables; tests drive it directly.
"""
