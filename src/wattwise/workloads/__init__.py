"""Workloads to measure: datasets and models (more arrive with the training capability)."""

from wattwise.workloads._numpy_mlp import NumpyMLP, make_blobs

__all__ = ["NumpyMLP", "make_blobs"]
