"""Inference energy: batching under a simulated request queue and its tuner, int8
quantization against fp32, and the model-zoo trend (energy per image by year and accuracy).

Every measuring function takes a :class:`~wattwise.protocol.LeverContext` (meters, store,
scope, progress) and a :class:`~wattwise.protocol.Protocol` (warm-up, repeats, windows);
each figure is a :class:`~wattwise.protocol.Measurement`.

The queue (:func:`serve_queue`, policies, arrivals, clocks) and the records need no PyTorch;
the measuring functions (``measure_batching``, ``measure_quantization``, ``measure_zoo``)
need the ``torch`` extra, and quantization torchao, and are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wattwise._extras import require as _require
from wattwise.infer._queue import (
    ARRIVAL_PROCESSES,
    BatchPolicy,
    Clock,
    QueueTrace,
    RealClock,
    RequestStream,
    ServedBatch,
    VirtualClock,
    make_arrivals,
    parse_policies,
    serve_queue,
)
from wattwise.infer._records import (
    BatchingResult,
    IdlePower,
    PolicyResult,
    QuantizationResult,
    QuantVariant,
    ZooEntry,
    ZooResult,
)
from wattwise.infer._sweep_record import BatchingSweep, parse_rates

if TYPE_CHECKING:
    from wattwise.infer._batching import (
        BATCHING_PROTOCOL,
        CLOCKS,
        measure_batching,
        measure_idle,
        pick_policy,
    )
    from wattwise.infer._plots import plot_batching_sweep, plot_zoo
    from wattwise.infer._quantize import (
        INT8_VARIANTS,
        QUANTIZE_PROTOCOL,
        PreparedModel,
        applicable_variants,
        measure_quantization,
        prepare_variant,
        tensor_bytes,
    )
    from wattwise.infer._study import STUDY_KINDS, record_study
    from wattwise.infer._sweep import sweep_batching
    from wattwise.infer._zoo import (
        DEFAULT_ZOO,
        FAMILY_YEARS,
        ZOO_PROTOCOL,
        ModelInfo,
        measure_zoo,
        model_info,
        pareto_front,
        zoo_models,
    )

__all__ = [
    "ARRIVAL_PROCESSES",
    "BATCHING_PROTOCOL",
    "CLOCKS",
    "DEFAULT_ZOO",
    "FAMILY_YEARS",
    "INT8_VARIANTS",
    "QUANTIZE_PROTOCOL",
    "STUDY_KINDS",
    "ZOO_PROTOCOL",
    "BatchPolicy",
    "BatchingResult",
    "BatchingSweep",
    "Clock",
    "IdlePower",
    "ModelInfo",
    "PolicyResult",
    "PreparedModel",
    "QuantVariant",
    "QuantizationResult",
    "QueueTrace",
    "RealClock",
    "RequestStream",
    "ServedBatch",
    "VirtualClock",
    "ZooEntry",
    "ZooResult",
    "applicable_variants",
    "make_arrivals",
    "measure_batching",
    "measure_idle",
    "measure_quantization",
    "measure_zoo",
    "model_info",
    "pareto_front",
    "parse_policies",
    "parse_rates",
    "pick_policy",
    "plot_batching_sweep",
    "plot_zoo",
    "prepare_variant",
    "record_study",
    "serve_queue",
    "sweep_batching",
    "tensor_bytes",
    "zoo_models",
]

_LAZY = {
    "BATCHING_PROTOCOL": "_batching",
    "CLOCKS": "_batching",
    "measure_batching": "_batching",
    "measure_idle": "_batching",
    "pick_policy": "_batching",
    "plot_batching_sweep": "_plots",
    "plot_zoo": "_plots",
    "sweep_batching": "_sweep",
    "INT8_VARIANTS": "_quantize",
    "QUANTIZE_PROTOCOL": "_quantize",
    "PreparedModel": "_quantize",
    "applicable_variants": "_quantize",
    "measure_quantization": "_quantize",
    "prepare_variant": "_quantize",
    "tensor_bytes": "_quantize",
    "STUDY_KINDS": "_study",
    "record_study": "_study",
    "DEFAULT_ZOO": "_zoo",
    "FAMILY_YEARS": "_zoo",
    "ZOO_PROTOCOL": "_zoo",
    "ModelInfo": "_zoo",
    "measure_zoo": "_zoo",
    "model_info": "_zoo",
    "pareto_front": "_zoo",
    "zoo_models": "_zoo",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _require(f"{__name__}.{name}", "torch", ["torch"])
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
