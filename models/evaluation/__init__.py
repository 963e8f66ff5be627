"""Evaluation: forecast accuracy metrics, detection scores (NAB, F1), shared by training flows and benchmarks."""
