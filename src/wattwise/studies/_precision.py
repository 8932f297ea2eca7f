"""Training precision of a study's configurations: bf16 through autocast, fp32 as is."""

from __future__ import annotations

import torch
from torch import nn

from wattwise._errors import ConfigError

__all__ = ["PRECISIONS", "Autocast", "check_precision", "with_precision"]

#: Training precisions a study can set (bf16 through autocast; fp16 would need a loss
#: scaler, which the training loop does not have).
PRECISIONS = ("fp32", "bf16")


class Autocast(nn.Module):
    """Runs a model's forward pass under ``torch.autocast`` with a reduced-precision dtype.

    The backward pass needs no context: autograd runs each backward operation in the dtype
    its forward operation used. Outputs are returned as float32 for the loss.

    Args:
        model: the wrapped model.
        dtype: ``torch.bfloat16``.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            out = self.model(x)
        logits = getattr(out, "logits", out)
        if not isinstance(logits, torch.Tensor):
            raise ConfigError(f"the model returned {type(out).__name__}, not class scores")
        return logits.float()


def check_precision(precision: str) -> None:
    """Raise :class:`ConfigError` for an unsupported precision."""
    if precision == "fp16":
        raise ConfigError(
            "fp16 training needs loss scaling, which the training loop does not do: use bf16"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")


def with_precision(model: nn.Module, precision: str) -> nn.Module:
    """The model set up to train in ``precision`` (``fp32``: unchanged)."""
    check_precision(precision)
    return model if precision == "fp32" else Autocast(model, torch.bfloat16)
