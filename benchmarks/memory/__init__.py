"""Worker memory per patient (issue 14, item 4): `python -m benchmarks.memory`."""
