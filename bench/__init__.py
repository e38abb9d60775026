"""Benchmarks: each module measures one claim of the design and prints a small table."""
