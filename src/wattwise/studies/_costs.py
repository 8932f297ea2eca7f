"""Static costs of a model: parameters and FLOPs, per module and in total, and layer types.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on a copy of the model on
PyTorch's ``meta`` device (shapes only, no arithmetic: instant even for large models). It
counts matrix products, convolutions and attention, a multiply-add as 2 FLOPs; element-wise
operations (activations, pooling, normalisation) count 0. That is the usual convention, and
it is why the layer study also measures time: cheap-in-FLOPs layers are not free.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wattwise._errors import ConfigError

__all__ = ["LAYER_TYPES", "ModelCost", "ModuleCost", "count_costs", "layer_type"]

#: Layer types of the layer study, in display order.
LAYER_TYPES = ("conv", "linear", "norm", "activation", "pooling", "attention", "other")

_NORMS = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)


def layer_type(module: nn.Module) -> str:
    """The layer type of a module: one of :data:`LAYER_TYPES`.

    Containers and custom blocks are ``other`` (only their own operations are theirs;
    their children are classified on their own), except blocks whose class name says
    attention.
    """
    if isinstance(module, nn.MultiheadAttention) or "attention" in type(module).__name__.lower():
        return "attention"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear | nn.Bilinear):
        return "linear"
    if isinstance(module, _NORMS):
        return "norm"
    if type(module).__module__ == "torch.nn.modules.activation":
        return "activation"
    if type(module).__module__ == "torch.nn.modules.pooling":
        return "pooling"
    return "other"


@dataclass(frozen=True)
class ModuleCost:
    """A module's own costs (its children's are theirs).

    Attributes:
        name: qualified name (``features.0``; the model itself is ``""``).
        module: class name.
        type: layer type (:data:`LAYER_TYPES`).
        params: own parameters.
        flops: own forward FLOPs per input sample.
        train_flops: own forward + backward FLOPs per input sample.
    """

    name: str
    module: str
    type: str
    params: int
    flops: int
    train_flops: int


@dataclass(frozen=True)
class ModelCost:
    """A model's costs.

    Attributes:
        params: all parameters.
        flops: forward FLOPs per input sample.
        train_flops: forward + backward FLOPs per input sample.
        modules: each module's own costs, in registration order.
    """

    params: int
    flops: int
    train_flops: int
    modules: tuple[ModuleCost, ...]

    def of(self, name: str) -> ModuleCost | None:
        """The costs of the module called ``name``, if any."""
        return next((m for m in self.modules if m.name == name), None)


_BATCH = 2  # batch norm needs more than one sample per channel in training mode


def _counted(model: nn.Module, x: torch.Tensor, backward: bool) -> FlopCounterMode:
    counter = FlopCounterMode(display=False, depth=None)  # type: ignore[arg-type]
    with counter:
        out = model(x)
        logits = getattr(out, "logits", out)
        if backward:
            logits.float().sum().backward()
    return counter


def _inclusive(counter: FlopCounterMode, root: str) -> dict[str, int]:
    """Module name -> FLOPs including its children's (FlopCounterMode names modules
    ``<RootClass>.<qualified name>``)."""
    out: dict[str, int] = {}
    for key, by_op in counter.get_flop_counts().items():
        if key == "Global":
            continue
        name = "" if key == root else key.removeprefix(root + ".")
        out[name] = out.get(name, 0) + int(sum(by_op.values()))
    return out


def count_costs(model: nn.Module, input_shape: tuple[int, ...]) -> ModelCost:
    """Parameters and FLOPs of ``model`` on inputs of ``input_shape``, per module.

    The model is not changed: a copy is traced on the ``meta`` device (a CPU copy when an
    operation has no meta implementation).

    Raises:
        ConfigError: the model cannot take this input shape.
    """
    was_training = model.training
    shape = (_BATCH, *input_shape)
    try:
        try:
            copy_ = copy.deepcopy(model).to("meta")
            fwd, both = _trace(copy_, torch.empty(shape, device="meta"))
        except (NotImplementedError, RuntimeError):
            copy_ = copy.deepcopy(model).to("cpu")
            fwd, both = _trace(copy_, torch.zeros(shape))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot count the FLOPs of this model on {shape}: {first}") from None
    finally:
        model.train(was_training)
    root = type(copy_).__name__
    inc_fwd, inc_both = _inclusive(fwd, root), _inclusive(both, root)
    names = [n for n, _ in model.named_modules()]
    children: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        if n:
            children[n.rpartition(".")[0]].append(n)
    rows = []
    for n, m in model.named_modules():

        def own(inc: dict[str, int], n: str = n) -> int:
            return max(0, inc.get(n, 0) - sum(inc.get(c, 0) for c in children[n]))

        rows.append(
            ModuleCost(
                name=n,
                module=type(m).__name__,
                type=layer_type(m),
                params=sum(p.numel() for p in m.parameters(recurse=False)),
                flops=own(inc_fwd) // _BATCH,
                train_flops=own(inc_both) // _BATCH,
            )
        )
    return ModelCost(
        params=sum(p.numel() for p in model.parameters()),
        flops=int(fwd.get_total_flops()) // _BATCH,
        train_flops=int(both.get_total_flops()) // _BATCH,
        modules=tuple(rows),
    )


def _trace(model: nn.Module, x: torch.Tensor) -> tuple[FlopCounterMode, FlopCounterMode]:
    model.train()
    fwd = _counted(model, x, backward=False)
    both = _counted(model, x, backward=True)
    return fwd, both
