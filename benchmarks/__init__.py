"""Benchmarks: each module measures one thing and returns rows; `python -m benchmarks.run` writes the report."""
