"""``python -m bench``: run the benchmarks (for now the subscription fan-out one)."""

from bench.subscribers import main

main()
