"""Evaluation: data sets (from traces or files), scorers and judges, runs through the gateway, and
comparisons between runs."""
