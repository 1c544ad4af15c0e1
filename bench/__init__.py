"""Benchmarks that print figures, and the naive chain they measure detektr against."""
