"""Evaluation: how well embeddings reproduce the derived hierarchy (retrieval, clustering,
radial probe, kNN), from the embedded crops of a split to report.json, report.md and plots.

The command line is ``python -m training.evaluate`` (training.eval.evaluate).
"""
