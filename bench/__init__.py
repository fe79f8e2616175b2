"""Benchmarks, run by hand (see run.py); results go in docs/benchmarks.md."""
