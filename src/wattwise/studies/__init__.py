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
* :func:`study_snn` -- spiking networks (snntorch, the ``snn`` extra) at a few time steps
  against the ANN of the same shape: operation-count energy (estimated, Horowitz ISSCC
  2014, 45 nm; :func:`count_ops`, :func:`price_ops`) beside the tracker's energy, and the
  firing rate where they cross.
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
from wattwise.studies._opcount import (
    OPCOUNT_SOURCE,
    PRICES,
    LayerOps,
    NeuronOps,
    OpCount,
    OpEnergy,
    Prices,
    count_ops,
    crossover_rate,
    price_ops,
)
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
from wattwise.studies._snn import study_snn
from wattwise.studies._snn_net import SNN_MODELS, SnnSpec, SpikingNet, build_snn, parse_snn_spec
from wattwise.studies._snn_records import CAUTION, Crossover, SnnStudy, SnnVariant

__all__ = [
    "CAUTION",
    "LAYER_TYPES",
    "OPCOUNT_SOURCE",
    "PRECISIONS",
    "PRICES",
    "RESULTS_SCHEMA_VERSION",
    "SNN_MODELS",
    "TESTS",
    "ArchitectureStudy",
    "Comparison",
    "Crossover",
    "EnvironmentResult",
    "EnvironmentStudy",
    "Extraction",
    "GpuFit",
    "GpuUsage",
    "KeypointStudy",
    "LayerOps",
    "LayerRow",
    "LayerStudy",
    "ModelCost",
    "ModelResult",
    "ModuleCost",
    "NeuronOps",
    "OpCount",
    "OpEnergy",
    "PipelineResult",
    "Prices",
    "RepeatedRuns",
    "Saving",
    "Setting",
    "SnnSpec",
    "SnnStudy",
    "SnnVariant",
    "SpikingNet",
    "StepProfile",
    "StudyMethod",
    "Summary",
    "Trial",
    "VariantResult",
    "Versus",
    "assess_gpu",
    "auto_variants",
    "build_snn",
    "compare",
    "count_costs",
    "count_ops",
    "crossover_rate",
    "layer_type",
    "min_p_value",
    "pareto_mask",
    "parse_snn_spec",
    "price_ops",
    "profile_steps",
    "study_architectures",
    "study_environments",
    "study_keypoints",
    "study_layers",
    "study_snn",
    "summarize",
    "summarize_gpu",
]
