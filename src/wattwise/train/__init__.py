"""Energy-aware training: a PyTorch loop with per-epoch energy, stopping rules that save
energy (learning-curve forecast, target accuracy, plateau, energy budget), transfer
learning, TensorBoard and MLflow.

Needs the ``torch`` extra. Framework callbacks live in their own modules, each needing its
framework: :mod:`wattwise.train.lightning`, :mod:`wattwise.train.keras`,
:mod:`wattwise.train.hf`.
"""

from wattwise._extras import require as _require

_require("wattwise.train", "torch", ["torch"])

from wattwise.train._batches import Batches
from wattwise.train._callbacks import Callback, TrainState
from wattwise.train._curve import CURVE_FAMILIES, CurveForecast
from wattwise.train._curve import forecast as forecast_curve
from wattwise.train._loop import OPTIMIZERS, evaluate, fit, resolve_device, seed_everything
from wattwise.train._mlflow import MlflowLogger, RunTotals
from wattwise.train._predict import predict_total
from wattwise.train._records import (
    EnergyPrediction,
    EpochRecord,
    FitResult,
    StopDecision,
    TrainingInterrupted,
)
from wattwise.train._stopping import (
    EnergyBudget,
    LearningCurve,
    Plateau,
    StopContext,
    StopRule,
    TargetAccuracy,
    parse_stop,
)
from wattwise.train._tensorboard import TensorBoardCallback
from wattwise.train._transfer import (
    HEAD_LR_FACTOR,
    NEW_ROW_INITS,
    Checkpoint,
    extend_head,
    fine_tune_lr_groups,
    freeze,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    unfreeze,
)

__all__ = [
    "CURVE_FAMILIES",
    "HEAD_LR_FACTOR",
    "NEW_ROW_INITS",
    "OPTIMIZERS",
    "Batches",
    "Callback",
    "Checkpoint",
    "CurveForecast",
    "EnergyBudget",
    "EnergyPrediction",
    "EpochRecord",
    "FitResult",
    "LearningCurve",
    "MlflowLogger",
    "Plateau",
    "RunTotals",
    "StopContext",
    "StopDecision",
    "StopRule",
    "TargetAccuracy",
    "TensorBoardCallback",
    "TrainState",
    "TrainingInterrupted",
    "evaluate",
    "extend_head",
    "fine_tune_lr_groups",
    "fit",
    "forecast_curve",
    "freeze",
    "load_checkpoint",
    "model_from_checkpoint",
    "parse_stop",
    "predict_total",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
    "unfreeze",
]
