"""Operation-count energy of artificial and spiking networks, on the same footing.

Forward hooks on real inputs count, per inference:

* **MACs** (multiply-accumulates) of every ``Linear`` / ``Conv1d`` / ``Conv2d`` layer fed
  analog values: an ANN's layers, and an SNN's first layer under direct coding;
* **synaptic accumulates** (ACs) of every layer fed spikes (inputs all 0 or 1) in a spiking
  network: each input spike is added into each output it reaches (its fan-out), so
  ACs = input spikes x fan-out, summed over the time steps; for a convolution, exactly the
  outputs whose receptive field holds the spike (borders included);
* **neuron updates** of the spiking layers (one per neuron per step: ``U = beta U + I``,
  priced as one MAC), with each layer's firing rate (spikes / (neurons x steps)).

The counts are priced with the 45 nm figures of M. Horowitz, "Computing's energy problem
(and what we can do about it)", ISSCC 2014: 32-bit float multiply 3.7 pJ + add 0.9 pJ
(MAC 4.6 pJ, AC 0.9 pJ); 16-bit float multiply 1.1 pJ + add 0.4 pJ; 8-bit integer
multiply 0.2 pJ + add 0.03 pJ. Memory (optional, stated in every figure): each operation
reads its weight from an 8 KB SRAM (10 pJ per 64-bit word, so 5 pJ per 32-bit weight,
2.5 pJ per 16-bit, 1.25 pJ per 8-bit), and each neuron update reads and writes its
membrane potential there. Every figure is an **estimate of dedicated hardware**, never a
measurement of this machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias

from wattwise._errors import ConfigError
from wattwise._records.base import Record

__all__ = [
    "OPCOUNT_SOURCE",
    "PRICES",
    "LayerOps",
    "NeuronOps",
    "OpCount",
    "OpEnergy",
    "Prices",
    "count_ops",
    "crossover_rate",
    "price_ops",
]

#: How every operation-count figure is labelled.
OPCOUNT_SOURCE = "estimated (operation count, Horowitz ISSCC 2014, 45 nm)"

#: SRAM read of one 64-bit word from an 8 KB cache, 45 nm (Horowitz, ISSCC 2014), in pJ.
SRAM_8KB_64BIT_PJ = 10.0

_SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class Prices(Record):
    """What one operation costs at a precision (Horowitz, ISSCC 2014, 45 nm), in pJ.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8``.
        mult_pj: one multiplication.
        add_pj: one addition (a synaptic accumulate).
        word_bits: bits of one weight or membrane potential.
    """

    precision: str
    mult_pj: float
    add_pj: float
    word_bits: int

    derived: ClassVar[tuple[str, ...]] = ("mac_pj", "ac_pj", "read_pj")

    @property
    def mac_pj(self) -> float:
        """One multiply-accumulate (multiply + add), in pJ."""
        return self.mult_pj + self.add_pj

    @property
    def ac_pj(self) -> float:
        """One accumulate (an addition), in pJ."""
        return self.add_pj

    @property
    def read_pj(self) -> float:
        """One word read from (or written to) an 8 KB SRAM, in pJ."""
        return SRAM_8KB_64BIT_PJ * self.word_bits / 64


#: The priced precisions (Horowitz, ISSCC 2014, 45 nm).
PRICES = {
    "fp32": Prices("fp32", 3.7, 0.9, 32),
    "fp16": Prices("fp16", 1.1, 0.4, 16),
    "int8": Prices("int8", 0.2, 0.03, 8),
}


@dataclass(frozen=True)
class LayerOps(Record):
    """One synaptic layer's operations per inference.

    Attributes:
        name: the module's qualified name.
        module: its class name.
        spiking_input: whether it was fed spikes (its ACs count) or analog values (MACs).
        calls: forward calls per inference (the time steps of a spiking network).
        macs: multiply-accumulates per inference (analog inputs).
        synops: synaptic accumulates per inference (spike inputs).
        max_synops: the accumulates if every input had spiked at every call.
        input_rate: fraction of its inputs that were non-zero (the input firing rate).
    """

    name: str
    module: str
    spiking_input: bool
    calls: float
    macs: float
    synops: float
    max_synops: float
    input_rate: float


@dataclass(frozen=True)
class NeuronOps(Record):
    """One spiking layer's neurons per inference.

    Attributes:
        name: the module's qualified name.
        neurons: neurons of the layer.
        steps: time steps per inference.
        updates: membrane updates per inference (neurons x steps).
        spikes: spikes per inference.
        firing_rate: spikes / updates.
    """

    name: str
    neurons: int
    steps: float
    updates: float
    spikes: float
    firing_rate: float


@dataclass(frozen=True)
class OpCount(Record):
    """A network's operations per inference, counted on real inputs.

    Attributes:
        samples: inputs counted over.
        layers: the synaptic layers, in the order they first ran.
        neurons: the spiking layers, in the order they first ran.
    """

    samples: int
    layers: tuple[LayerOps, ...]
    neurons: tuple[NeuronOps, ...] = ()

    derived: ClassVar[tuple[str, ...]] = ("macs", "synops", "updates", "input_rate")

    @property
    def macs(self) -> float:
        """Multiply-accumulates per inference."""
        return sum(layer.macs for layer in self.layers)

    @property
    def synops(self) -> float:
        """Synaptic accumulates per inference."""
        return sum(layer.synops for layer in self.layers)

    @property
    def updates(self) -> float:
        """Neuron updates per inference."""
        return sum(n.updates for n in self.neurons)

    @property
    def input_rate(self) -> float:
        """The spike-fed layers' input firing rate, weighted by fan-out (synops over
        their maximum); 0 when no layer was fed spikes."""
        most = sum(layer.max_synops for layer in self.layers if layer.spiking_input)
        return self.synops / most if most > 0 else 0.0


@dataclass(frozen=True)
class OpEnergy(Record):
    """Operation-count energy per inference at one precision: an estimate of dedicated
    hardware (:data:`OPCOUNT_SOURCE`), never a measurement.

    Attributes:
        precision: the priced precision.
        memory: whether weight and membrane SRAM traffic is counted.
        mac_pj: the MACs' energy, in pJ.
        ac_pj: the synaptic accumulates' energy, in pJ.
        neuron_pj: the neuron updates' energy, in pJ.
        memory_pj: SRAM traffic, in pJ (0 without memory).
        source: how the figure was made.
    """

    precision: str
    memory: bool
    mac_pj: float
    ac_pj: float
    neuron_pj: float
    memory_pj: float
    source: str = OPCOUNT_SOURCE

    derived: ClassVar[tuple[str, ...]] = ("total_pj",)

    @property
    def total_pj(self) -> float:
        """Everything counted, in pJ per inference."""
        return self.mac_pj + self.ac_pj + self.neuron_pj + self.memory_pj


def price_ops(count: OpCount, precision: str = "fp32", *, memory: bool = True) -> OpEnergy:
    """Price ``count`` at ``precision`` (see the module's text for the figures).

    Raises:
        ConfigError: an unknown precision.
    """
    p = _prices(precision)
    mem = 0.0
    if memory:
        mem = (count.macs + count.synops) * p.read_pj + count.updates * 2 * p.read_pj
    return OpEnergy(
        precision=p.precision,
        memory=memory,
        mac_pj=count.macs * p.mac_pj,
        ac_pj=count.synops * p.ac_pj,
        neuron_pj=count.updates * p.mac_pj,
        memory_pj=mem,
    )


def crossover_rate(
    count: OpCount, ann_pj: float, precision: str = "fp32", *, memory: bool = True
) -> float | None:
    """The input firing rate of the spike-fed layers (scaled alike) at which the spiking
    network's operation-count energy equals ``ann_pj``, everything else as counted.

    The energy is linear in that rate: ``E(r) = fixed + r * per_rate``, where ``fixed`` is
    the MACs of analog-fed layers and the neuron updates, and ``per_rate`` the
    accumulates (and their weight reads) if every input spiked. Below the returned rate
    the spiking network is cheaper. Negative: it never is; None: no layer is spike-fed.
    """
    p = _prices(precision)
    per_op = p.ac_pj + (p.read_pj if memory else 0.0)
    per_rate = sum(layer.max_synops for layer in count.layers if layer.spiking_input) * per_op
    if per_rate <= 0:
        return None
    priced = price_ops(count, precision, memory=memory)
    fixed = priced.total_pj - count.synops * per_op
    return (ann_pj - fixed) / per_rate


def _prices(precision: str) -> Prices:
    try:
        return PRICES[precision]
    except KeyError:
        raise ConfigError(
            f"unknown precision {precision!r} (priced: {', '.join(PRICES)})"
        ) from None


@dataclass
class _Tally:
    module: str
    spiking: bool = False
    calls: int = 0
    macs: int = 0
    synops: int = 0
    max_synops: int = 0
    inputs: int = 0
    nonzero: int = 0


@dataclass
class _NeuronTally:
    neurons: int = 0
    calls: int = 0
    spikes: float = 0.0
    updates: int = 0


@dataclass
class _Counter:
    spiking: bool
    samples: int = 0
    batches: int = 0
    layers: dict[str, _Tally] = field(default_factory=dict)
    neurons: dict[str, _NeuronTally] = field(default_factory=dict)

    def synaptic(self, name: str, module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> None:
        tally = self.layers.setdefault(name, _Tally(type(module).__name__))
        tally.calls += 1
        nonzero = int(torch.count_nonzero(x))
        tally.inputs += x.numel()
        tally.nonzero += nonzero
        binary = self.spiking and bool(((x == 0) | (x == 1)).all())
        if binary:
            tally.spiking = True
            tally.synops += _fan_out_sum(module, (x != 0).to(torch.float64))
            tally.max_synops += _fan_out_sum(module, torch.ones_like(x, dtype=torch.float64))
        else:
            tally.macs += _dense_macs(module, x, out)

    def neuron(self, name: str, spikes: torch.Tensor, samples: int) -> None:
        tally = self.neurons.setdefault(name, _NeuronTally())
        tally.calls += 1
        tally.neurons = spikes.numel() // max(samples, 1)
        tally.updates += spikes.numel()
        tally.spikes += float(spikes.detach().sum())

    def result(self) -> OpCount:
        n = max(self.samples, 1)
        layers = tuple(
            LayerOps(
                name=name,
                module=t.module,
                spiking_input=t.spiking,
                calls=t.calls / max(self.batches, 1),
                macs=t.macs / n,
                synops=t.synops / n,
                max_synops=t.max_synops / n,
                input_rate=t.nonzero / t.inputs if t.inputs else 0.0,
            )
            for name, t in self.layers.items()
        )
        neurons = tuple(
            NeuronOps(
                name=name,
                neurons=t.neurons,
                steps=t.calls / max(self.batches, 1),
                updates=t.updates / n,
                spikes=t.spikes / n,
                firing_rate=t.spikes / t.updates if t.updates else 0.0,
            )
            for name, t in self.neurons.items()
        )
        return OpCount(samples=self.samples, layers=layers, neurons=neurons)


def _dense_macs(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Dense MACs: every output element times the inputs it sums."""
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    assert isinstance(module, nn.Conv1d | nn.Conv2d)
    per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    return out.numel() * per_output


def _fan_out_sum(module: nn.Module, mask: torch.Tensor) -> int:
    """Sum over the non-zero inputs of the outputs each reaches (exactly, borders
    included): the accumulates a spike-driven layer performs."""
    if isinstance(module, nn.Linear):
        return int(mask.sum().item()) * module.out_features
    assert isinstance(module, nn.Conv1d | nn.Conv2d)
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise ConfigError(f"cannot count spikes through {module!r}: use zero, numeric padding")
    g = module.groups
    ones = torch.ones(g, module.in_channels // g, *module.kernel_size, dtype=mask.dtype)
    conv = F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d
    reached = conv(
        mask, ones, stride=module.stride, padding=module.padding, dilation=module.dilation, groups=g
    )
    return round(float(reached.sum().item())) * (module.out_channels // g)


@contextmanager
def _hooks(
    model: nn.Module, counter: _Counter, is_neuron: Callable[[nn.Module], bool], batch: list[int]
) -> Iterator[None]:
    handles = []

    def synaptic_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
            counter.synaptic(name, module, args[0].detach(), out)

        return hook

    def neuron_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            counter.neuron(name, spikes.detach(), batch[0])

        return hook

    for name, module in model.named_modules():
        if is_neuron(module):
            handles.append(module.register_forward_hook(neuron_hook(name)))
        elif isinstance(module, _SYNAPTIC):
            handles.append(module.register_forward_hook(synaptic_hook(name)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def count_ops(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    spiking: bool = False,
    is_neuron: Callable[[nn.Module], bool] = lambda m: False,
    batch_size: int = 256,
) -> OpCount:
    """Count ``model``'s operations per inference on ``inputs`` by forward hooks.

    Args:
        model: the network (run in eval mode, without gradients, on the CPU).
        inputs: real inputs, a batch ``N x ...``.
        spiking: a spiking network: layers fed only 0s and 1s count accumulates.
        is_neuron: which modules are spiking neurons (their output, or its first element,
            is the spikes); their firing rates are counted.
        batch_size: inputs per forward call.

    Raises:
        ConfigError: no inputs, or a convolution whose padding cannot be counted.
    """
    if len(inputs) == 0 or batch_size < 1:
        raise ConfigError("counting operations needs at least one input and batch size >= 1")
    counter = _Counter(spiking=spiking)
    current = [0]
    was_training = model.training
    model.eval()
    try:
        with _hooks(model, counter, is_neuron, current), torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                xb = inputs[start : start + batch_size].cpu()
                current[0] = len(xb)
                model(xb)
                counter.samples += len(xb)
                counter.batches += 1
    finally:
        model.train(was_training)
    return counter.result()
