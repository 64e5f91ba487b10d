"""Benchmarks for evpark; see bench/README.md."""
