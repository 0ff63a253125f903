"""Benchmarks: commands that print numbers (``openrealtime bench ...``), never timed tests."""
