"""Comparative studies: architectures and their Pareto front, per-layer energy, training
environments. Needs the ``torch`` extra and SciPy.

Every study trains or steps real models, repeated under one protocol
(:class:`StudyMethod`: a :class:`~wattwise.protocol.Protocol` of warm-up, round-robin
repeats and optional cool-down; medians and spread, a significance test), stores each
measured run with the study when a store is given, and compares configurations only with
others measured in the same study.

* :func:`study_architectures` -- models on the same data, budget and stopping rules: the
  energy/accuracy Pareto front and the energy the cheapest good-enough model saves.
* :func:`study_layers` -- per-module FLOPs, parameters and profiled time share of training
  steps, with the measured energy attributed by time share; smaller variants trained and
  compared.
* :func:`study_keypoints` -- the sAIn pattern: a lean network on hand keypoints against a
  CNN on the frames, both trained to the same accuracy; training and inference energy,
  with the keypoint extraction when a MediaPipe landmarker model is given.
* :func:`study_environments` -- threads, batch size, precision and device: the cheapest
  setting that keeps the baseline's accuracy; on a GPU, whether it is oversized.
"""

from wattwise._extras import require as _require

_require("wattwise.studies", "torch", ["torch"])

from wattwise.protocol._stats import (
    TESTS,
    Comparison,
    Summary,
    compare,
    min_p_value,
    pareto_mask,
    summarize,
)
from wattwise.studies._architectures import study_architectures
from wattwise.studies._costs import LAYER_TYPES, ModelCost, ModuleCost, count_costs, layer_type
from wattwise.studies._environments import study_environments
from wattwise.studies._gpu_fit import assess_gpu, summarize_gpu
from wattwise.studies._keypoint_records import Extraction, KeypointStudy, PipelineResult
from wattwise.studies._keypoints import study_keypoints
from wattwise.studies._layers import auto_variants, study_layers
from wattwise.studies._method import StudyMethod
from wattwise.studies._precision import PRECISIONS
from wattwise.studies._profile import StepProfile, profile_steps
from wattwise.studies._records import (
    RESULTS_SCHEMA_VERSION,
    ArchitectureStudy,
    EnvironmentResult,
    EnvironmentStudy,
    GpuFit,
    GpuUsage,
    LayerRow,
    LayerStudy,
    ModelResult,
    RepeatedRuns,
    Saving,
    Setting,
    Trial,
    VariantResult,
    Versus,
)

__all__ = [
    "LAYER_TYPES",
    "PRECISIONS",
    "RESULTS_SCHEMA_VERSION",
    "TESTS",
    "ArchitectureStudy",
    "Comparison",
    "EnvironmentResult",
    "EnvironmentStudy",
    "Extraction",
    "GpuFit",
    "GpuUsage",
    "KeypointStudy",
    "LayerRow",
    "LayerStudy",
    "ModelCost",
    "ModelResult",
    "ModuleCost",
    "PipelineResult",
    "RepeatedRuns",
    "Saving",
    "Setting",
    "StepProfile",
    "StudyMethod",
    "Summary",
    "Trial",
    "VariantResult",
    "Versus",
    "assess_gpu",
    "auto_variants",
    "compare",
    "count_costs",
    "layer_type",
    "min_p_value",
    "pareto_mask",
    "profile_steps",
    "study_architectures",
    "study_environments",
    "study_keypoints",
    "study_layers",
    "summarize",
    "summarize_gpu",
]
