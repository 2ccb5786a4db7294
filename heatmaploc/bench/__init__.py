"""Benchmark components: physical limits, classical baselines, suites and reports."""
