"""Benchmarks of the durable job path against raw Celery: `python -m bench.run`."""
