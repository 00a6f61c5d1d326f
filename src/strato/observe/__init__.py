"""Observability: the trace recorder and the Prometheus metrics."""
