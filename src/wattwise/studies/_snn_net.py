"""Spiking networks built from snntorch's leaky integrate-and-fire neurons.

Why snntorch (the ``snn`` extra): it is maintained, pure Python on PyTorch, small, and its
neurons (``snntorch.Leaky``) are plain ``nn.Module`` objects trained with surrogate
gradients (a fast-sigmoid by default), so a spiking network here is an ordinary module
mapping a batch to logits, with the ``T`` time steps inside ``forward``: the usual
training loop (:func:`wattwise.train.fit`) and its energy tracking apply unchanged.

Specs: ``snn-mlp[:OPTIONS]`` (fully connected) and ``snn-cnn1d[:OPTIONS]`` (1-D
convolutions, for sequences such as mnist1d). Options: ``steps=`` (T, default 8),
``width=`` (default 256 for the MLP, 32 channels for the CNN), ``depth=`` (hidden layers,
default 1; conv blocks for the CNN, default 2), ``coding=`` (``rate``: Bernoulli spikes
with the input's min-max-normalised value as probability, every step; ``direct``: the
analog input to the first layer every step), ``readout=`` (``membrane``: the mean of the
output neurons' membrane potential, which do not fire; ``count``: their spike counts),
``beta=`` (membrane decay, default 0.9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._extras import missing_modules, require
from wattwise.workloads._spec import split_spec

if not missing_modules(["snntorch"]):
    import snntorch

__all__ = ["SNN_MODELS", "SnnSpec", "SpikingNet", "build_snn", "is_neuron", "parse_snn_spec"]

#: The spiking model specs, with their options.
SNN_MODELS = {
    "snn-mlp": "spiking fully connected; options steps=, width=, depth=, coding=rate|direct, "
    "readout=membrane|count, beta=",
    "snn-cnn1d": "spiking 1-D convolutional, for sequences (C, L); same options (width= "
    "channels, depth= conv blocks)",
}

_CODINGS = ("rate", "direct")
_READOUTS = ("membrane", "count")


@dataclass(frozen=True)
class SnnSpec:
    """A spiking network's settings (see the module's text).

    Attributes:
        family: ``mlp`` or ``cnn1d``.
        steps: time steps T.
        width: hidden units (MLP) or channels (CNN).
        depth: hidden layers (MLP) or conv blocks (CNN).
        coding: ``rate`` or ``direct``.
        readout: ``membrane`` or ``count``.
        beta: membrane decay per step (0..1).
    """

    family: str
    steps: int = 8
    width: int = 256
    depth: int = 1
    coding: str = "rate"
    readout: str = "membrane"
    beta: float = 0.9

    def __post_init__(self) -> None:
        if self.family not in ("mlp", "cnn1d"):
            raise ConfigError(f"unknown spiking family {self.family!r} (use mlp or cnn1d)")
        if self.steps < 1 or self.width < 1 or self.depth < 1:
            raise ConfigError("steps, width and depth of a spiking network must be >= 1")
        if self.coding not in _CODINGS:
            raise ConfigError(f"unknown coding {self.coding!r} (use rate or direct)")
        if self.readout not in _READOUTS:
            raise ConfigError(f"unknown readout {self.readout!r} (use membrane or count)")
        if not 0.0 < self.beta <= 1.0:
            raise ConfigError(f"beta must be in (0, 1], got {self.beta}")

    @property
    def spec(self) -> str:
        """The spec text that builds it."""
        return (
            f"snn-{self.family}:steps={self.steps},width={self.width},depth={self.depth},"
            f"coding={self.coding},readout={self.readout},beta={self.beta:g}"
        )

    @property
    def ann_spec(self) -> str:
        """The spec of the artificial network of the same shape (ReLU for the neurons)."""
        if self.family == "mlp":
            return f"mlp:depth={self.depth},width={self.width}"
        return f"cnn1d:depth={self.depth},width={self.width},kernel=5"


def parse_snn_spec(spec: str) -> SnnSpec:
    """``snn-mlp:steps=8,width=256,coding=rate`` as a :class:`SnnSpec`.

    Raises:
        ConfigError: an unknown model or option, or a value out of range.
    """
    name, rest = split_spec(spec)
    if name not in SNN_MODELS:
        raise ConfigError(f"unknown spiking model {name!r} (use {' or '.join(SNN_MODELS)})")
    family = name.removeprefix("snn-")
    values: dict[str, object] = {} if family == "mlp" else {"width": 32, "depth": 2}
    kinds = {"steps": int, "width": int, "depth": int, "beta": float, "coding": str}
    kinds["readout"] = str
    for part in (p.strip() for p in rest.split(",") if p.strip()):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in kinds:
            raise ConfigError(f"bad option {part!r} of {name} (options: {', '.join(kinds)})")
        try:
            values[key] = kinds[key](value.strip().lower())
        except ValueError:
            raise ConfigError(f"bad value {value!r} for {key} of {name}") from None
    return SnnSpec(family, **values)  # type: ignore[arg-type]


class SpikingNet(nn.Module):
    """A spiking MLP or 1-D CNN of snntorch ``Leaky`` neurons, run for ``steps`` steps, with
    the layers of the ANN ``mlp`` / ``cnn1d`` of the same width and depth (the 1-D CNN:
    kernel 5, stride 2 after the first block, flattened into the head).

    Layers are ``layers.i`` (``Linear`` / ``Conv1d``), each followed by ``lifs.i``; the
    classifier ``head`` feeds ``out``, the output neurons.

    Args:
        spec: the settings.
        input_shape: the shape of one input.
        num_classes: output width.
        lo: the input value mapped to spike probability 0 under rate coding.
        hi: the input value mapped to probability 1.
    """

    def __init__(
        self,
        spec: SnnSpec,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        lo: float = 0.0,
        hi: float = 1.0,
    ) -> None:
        super().__init__()
        require("spiking networks", "snn", ["snntorch"])
        if not hi > lo:
            raise ConfigError(f"the rate-coding range needs hi > lo, got {lo}..{hi}")
        self.spec = spec
        self.lo, self.hi = lo, hi
        layers: list[nn.Module] = []
        if spec.family == "mlp":
            n_in = math.prod(input_shape)
            for _ in range(spec.depth):
                layers.append(nn.Linear(n_in, spec.width))
                n_in = spec.width
            self.pool: nn.Module = nn.Flatten()
        else:
            if len(input_shape) != 2:
                raise ConfigError(
                    f"snn-cnn1d takes sequences (C, L), not inputs of shape {input_shape}"
                )
            c, length = input_shape
            for i in range(spec.depth):  # the layout of the ANN cnn1d (kernel 5)
                stride = 1 if i == 0 or length < 2 else 2
                layers.append(nn.Conv1d(c, spec.width, 5, stride=stride, padding=2))
                length = (length - 1) // stride + 1
                c = spec.width
            self.pool = nn.Flatten()
            n_in = c * length
        self.layers = nn.ModuleList(layers)
        self.lifs = nn.ModuleList(snntorch.Leaky(beta=spec.beta) for _ in layers)
        self.head = nn.Linear(n_in, num_classes)
        reset = "none" if spec.readout == "membrane" else "subtract"
        self.out = snntorch.Leaky(beta=spec.beta, reset_mechanism=reset)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.coding == "direct":
            return x
        p = ((x - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
        return torch.bernoulli(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``N x classes``: the output membrane's mean, or the output spike count."""
        if self.spec.family == "mlp":
            x = x.flatten(1)
        mems = [torch.zeros(()) for _ in self.lifs]  # snntorch broadcasts a scalar state
        mem_out = torch.zeros(())
        total = torch.zeros((), device=x.device)
        for _ in range(self.spec.steps):
            h = self._encode(x)
            for i, (layer, lif) in enumerate(zip(self.layers, self.lifs, strict=True)):
                h, mems[i] = lif(layer(h), mems[i])
            spk, mem_out = self.out(self.head(self.pool(h)), mem_out)
            total = total + (mem_out if self.spec.readout == "membrane" else spk)
        logits: torch.Tensor = total / self.spec.steps
        return logits


def is_neuron(module: nn.Module) -> bool:
    """Whether ``module`` is a spiking neuron layer (snntorch's)."""
    return not missing_modules(["snntorch"]) and isinstance(module, snntorch.SpikingNeuron)


def build_snn(
    spec: str | SnnSpec,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    lo: float = 0.0,
    hi: float = 1.0,
) -> SpikingNet:
    """The spiking network of ``spec`` for inputs of ``input_shape``.

    Raises:
        MissingExtra: snntorch is not installed (the ``snn`` extra).
        ConfigError: a bad spec, or a CNN on inputs that are not sequences.
    """
    require("spiking networks", "snn", ["snntorch"])
    parsed = parse_snn_spec(spec) if isinstance(spec, str) else spec
    return SpikingNet(parsed, input_shape, num_classes, lo=lo, hi=hi)
