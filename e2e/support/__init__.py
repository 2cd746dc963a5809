"""Helpers shared by the multi-process tests and benchmarks (real PostgreSQL, Redis, nginx, nodes)."""
