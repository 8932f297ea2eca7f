"""Workloads to measure: datasets and models.

The NumPy MLP and the MNIST-1D and gesture generators need nothing but NumPy. The PyTorch
datasets and models (``load_dataset``, ``build_model``...) need the ``torch`` extra and are
imported on first use, so that ``import wattwise.workloads`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wattwise._extras import require as _require
from wattwise.workloads._gestures import GESTURES, make_gestures, render_frames
from wattwise.workloads._mnist1d import make_mnist1d
from wattwise.workloads._numpy_mlp import NumpyMLP, make_blobs
from wattwise.workloads._spec import parse_classes

if TYPE_CHECKING:
    from wattwise.workloads._datasets import DATASETS, DataSplit, load_dataset, make_synthetic
    from wattwise.workloads._models import (
        BUILTIN_MODELS,
        CNN,
        CNN1D,
        GRU,
        LSTM,
        MLP,
        FrameCNN,
        build_model,
        find_head,
        torchvision_models,
    )

__all__ = [
    "BUILTIN_MODELS",
    "CNN",
    "CNN1D",
    "DATASETS",
    "GESTURES",
    "GRU",
    "LSTM",
    "MLP",
    "DataSplit",
    "FrameCNN",
    "NumpyMLP",
    "build_model",
    "find_head",
    "load_dataset",
    "make_blobs",
    "make_gestures",
    "make_mnist1d",
    "make_synthetic",
    "parse_classes",
    "render_frames",
    "torchvision_models",
]

_LAZY = {
    "DATASETS": "_datasets",
    "DataSplit": "_datasets",
    "load_dataset": "_datasets",
    "make_synthetic": "_datasets",
    "BUILTIN_MODELS": "_models",
    "CNN": "_models",
    "CNN1D": "_models",
    "GRU": "_models",
    "LSTM": "_models",
    "FrameCNN": "_models",
    "MLP": "_models",
    "build_model": "_models",
    "find_head": "_models",
    "torchvision_models": "_models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _require(f"{__name__}.{name}", "torch", ["torch"])
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
