"""The elastic CNN: stages of inverted-residual blocks with elastic depth, kernel and width.

The family of Cai et al., "Once-for-All", ICLR 2020 (their MobileNetV3 space, scaled down to
the bundled workloads): a stem convolution, ``stages`` stages of up to ``max_depth``
inverted-residual blocks (expand 1x1 -> depthwise ``k`` -> project 1x1, MobileNetV2), global
average pooling and a linear head. One code path serves sequences ``(C, L)`` (mnist1d, 1-D
convolutions) and images ``(C, H, W)`` (digits, 32x32 images, 2-D convolutions).

* **depth**: a stage runs its first ``d`` blocks (every block after a stage's first keeps the
  shape and is residual, so skipping it is the identity);
* **kernel**: each block's depthwise kernel is a transformed centre crop of the largest
  (:class:`~wattwise.ofa._elastic.ElasticDepthwiseConv`);
* **width**: each block's hidden channels are the first ``round(in * expand_ratio)`` of the
  largest, sorted by importance with :meth:`ElasticCNN.sort_channels`.

The first block of each stage halves the length (or the image) while it is longer than 2 and
moves to the stage's width. :meth:`ElasticCNN.export` gives a sub-network as a plain
:class:`SubnetCNN` (ordinary layers, its own weights); :meth:`ElasticCNN.fresh` the same shape
freshly initialised, the baseline trained from scratch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._records.base import Record
from wattwise.ofa._elastic import (
    ElasticDepthwiseConv,
    ElasticNorm,
    ElasticPointwiseConv,
    conv_class,
    hidden_channels,
)
from wattwise.ofa._space import ElasticSpace, SubnetConfig

__all__ = ["ElasticArch", "ElasticCNN", "SubnetCNN", "elastic_network"]

_STEM_KERNEL = 3


@dataclass(frozen=True)
class ElasticArch(Record):
    """What an :class:`ElasticCNN` is built from (saved beside its weights).

    Attributes:
        input_shape: one input, ``(C, L)`` (1-D convolutions) or ``(C, H, W)`` (2-D).
        num_classes: outputs of the head.
        widths: channels of each stage (the stem has the first stage's).
        space: the sub-networks it holds.
    """

    kind: ClassVar[str] = "ofa-elastic-arch"

    input_shape: tuple[int, ...]
    num_classes: int
    widths: tuple[int, ...]
    space: ElasticSpace

    def __post_init__(self) -> None:
        if len(self.input_shape) not in (2, 3) or min(self.input_shape) < 1:
            raise ConfigError(
                f"an elastic network takes sequences (C, L) or images (C, H, W), not inputs "
                f"of shape {tuple(self.input_shape)}"
            )
        if self.num_classes < 1:
            raise ConfigError(f"an elastic network needs >= 1 class, got {self.num_classes}")
        if len(self.widths) != self.space.stages or min(self.widths) < 1:
            raise ConfigError(
                f"an elastic network needs one width >= 1 per stage ({self.space.stages}), "
                f"got {self.widths}"
            )

    @property
    def dims(self) -> int:
        """Spatial dimensions: 1 for sequences, 2 for images."""
        return len(self.input_shape) - 1

    def block_shapes(self) -> list[tuple[int, int, int]]:
        """``(in_channels, out_channels, stride)`` of every block, stage by stage."""
        shapes: list[tuple[int, int, int]] = []
        channels, side = self.widths[0], min(self.input_shape[1:])
        for width in self.widths:
            stride = 2 if side > 2 else 1
            side = (side - 1) // stride + 1
            shapes.append((channels, width, stride))
            shapes += [(width, width, 1)] * (self.space.max_depth - 1)
            channels = width
        return shapes

    def positions(self) -> list[tuple[int, int]]:
        """Positions (length, or height x width) into and out of every block."""
        sides = self.input_shape[1:]
        out: list[tuple[int, int]] = []
        for _, _, stride in self.block_shapes():
            before = math.prod(sides)
            sides = tuple((s - 1) // stride + 1 for s in sides)
            out.append((before, math.prod(sides)))
        return out


def _stem(arch: ElasticArch) -> nn.Sequential:
    conv = conv_class(arch.dims)(
        arch.input_shape[0], arch.widths[0], _STEM_KERNEL, padding=_STEM_KERNEL // 2, bias=False
    )
    return nn.Sequential(conv, nn.GroupNorm(1, arch.widths[0]), nn.ReLU())


def _init(module: nn.Module) -> None:
    """The initialisation of the elastic layers, for a plain network trained from scratch."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv1d | nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out")


class SubnetBlock(nn.Module):
    """A plain inverted-residual block: expand 1x1, depthwise, project 1x1, each normalised
    (one-group GroupNorm), ReLU after the first two, the input added when shapes match."""

    def __init__(self, layers: list[nn.Module], *, residual: bool) -> None:
        super().__init__()
        self.expand, self.expand_norm, self.depthwise, self.depthwise_norm = layers[:4]
        self.project, self.project_norm = layers[4:]
        self.residual = residual

    @classmethod
    def fresh(
        cls, in_c: int, hidden: int, out_c: int, k: int, stride: int, dims: int
    ) -> SubnetBlock:
        """A freshly initialised block of that shape."""
        conv = conv_class(dims)
        layers: list[nn.Module] = [
            conv(in_c, hidden, 1, bias=False),
            nn.GroupNorm(1, hidden),
            conv(hidden, hidden, k, stride=stride, padding=k // 2, groups=hidden, bias=False),
            nn.GroupNorm(1, hidden),
            conv(hidden, out_c, 1, bias=False),
            nn.GroupNorm(1, out_c),
        ]
        block = cls(layers, residual=stride == 1 and in_c == out_c)
        _init(block)
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.expand_norm(self.expand(x)))
        h = torch.relu(self.depthwise_norm(self.depthwise(h)))
        h = self.project_norm(self.project(h))
        out: torch.Tensor = x + h if self.residual else h
        return out


class SubnetCNN(nn.Module):
    """One sub-network as a plain module: stem, blocks, global average pool, linear head."""

    def __init__(self, stem: nn.Module, blocks: list[SubnetBlock], head: nn.Linear) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x)).flatten(2).mean(-1)
        out: torch.Tensor = self.head(features)
        return out


class ElasticBlock(nn.Module):
    """An inverted-residual block with elastic kernel and hidden channels."""

    def __init__(self, in_c: int, out_c: int, stride: int, arch: ElasticArch) -> None:
        super().__init__()
        space, dims = arch.space, arch.dims
        self.in_c, self.out_c, self.stride, self.dims = in_c, out_c, stride, dims
        self.max_hidden = hidden_channels(in_c, max(space.expand_choices))
        self.expand = ElasticPointwiseConv(in_c, self.max_hidden, dims=dims)
        self.expand_norm = ElasticNorm(self.max_hidden)
        self.depthwise = ElasticDepthwiseConv(
            self.max_hidden, space.kernel_choices, dims=dims, stride=stride
        )
        self.depthwise_norm = ElasticNorm(self.max_hidden)
        self.project = ElasticPointwiseConv(self.max_hidden, out_c, dims=dims)
        self.project_norm = ElasticNorm(out_c)
        self.residual = stride == 1 and in_c == out_c

    def hidden(self, expand_ratio: float) -> int:
        """Hidden channels at that expand ratio."""
        return hidden_channels(self.in_c, expand_ratio)

    def forward(self, x: torch.Tensor, k: int, expand_ratio: float) -> torch.Tensor:
        h = torch.relu(self.expand_norm(self.expand(x, self.hidden(expand_ratio))))
        h = torch.relu(self.depthwise_norm(self.depthwise(h, k)))
        h = self.project_norm(self.project(h, self.out_c))
        out: torch.Tensor = x + h if self.residual else h
        return out

    def export(self, k: int, expand_ratio: float) -> SubnetBlock:
        """This block at kernel ``k`` and that expand ratio, as a plain block."""
        c = self.hidden(expand_ratio)
        layers = [
            self.expand.plain(self.in_c, c),
            self.expand_norm.plain(c),
            self.depthwise.plain(k, c),
            self.depthwise_norm.plain(c),
            self.project.plain(c, self.out_c),
            self.project_norm.plain(self.out_c),
        ]
        return SubnetBlock(layers, residual=self.residual)

    def fresh(self, k: int, expand_ratio: float) -> SubnetBlock:
        """A freshly initialised plain block of the shape :meth:`export` gives."""
        c = self.hidden(expand_ratio)
        return SubnetBlock.fresh(self.in_c, c, self.out_c, k, self.stride, self.dims)

    def macs(self, k: int, expand_ratio: float, positions: tuple[int, int]) -> int:
        """Multiply-accumulates of one item through this block at that size, given the
        positions into and out of it."""
        c, (p_in, p_out) = self.hidden(expand_ratio), positions
        return p_in * self.in_c * c + p_out * c * (math.prod((k,) * self.dims) + self.out_c)

    def param_count(self, k: int, expand_ratio: float) -> int:
        """Parameters of this block at that size (convolutions and norms' affines)."""
        c = self.hidden(expand_ratio)
        return (
            self.in_c * c
            + c * math.prod((k,) * self.dims)
            + c * self.out_c
            + 2 * (2 * c + self.out_c)
        )

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Reorder the hidden channels, most important first, keeping the block's function
        at full width. A channel's importance is the L1 norm of its weights in the project
        convolution (how much it adds to the output; the reference code's choice)."""
        importance = self.project.weight.abs().sum(dim=[0, *range(2, 2 + self.dims)])
        order = torch.argsort(importance, descending=True, stable=True)
        self.expand.weight.copy_(self.expand.weight[order])
        self.depthwise.weight.copy_(self.depthwise.weight[order])
        for norm in (self.expand_norm, self.depthwise_norm):
            norm.weight.copy_(norm.weight[order])
            norm.bias.copy_(norm.bias[order])
        self.project.weight.copy_(self.project.weight[:, order])


class ElasticCNN(nn.Module):
    """An elastic network (implements :class:`~wattwise.ofa.ElasticNetwork`).

    ``forward`` runs the active sub-network (:meth:`set_active`; the largest at first).

    Args:
        arch: shape, classes, stage widths and the space of sub-networks.
    """

    def __init__(self, arch: ElasticArch) -> None:
        super().__init__()
        self.arch = arch
        self.stem = _stem(arch)
        _init(self.stem)
        self.blocks = nn.ModuleList(ElasticBlock(i, o, s, arch) for i, o, s in arch.block_shapes())
        self.head = nn.Linear(arch.widths[-1], arch.num_classes)
        self._active = arch.space.largest()
        self._positions = arch.positions()

    @property
    def space(self) -> ElasticSpace:
        """The sub-networks this network holds."""
        return self.arch.space

    @property
    def active(self) -> SubnetConfig:
        """The sub-network ``forward`` runs (canonical)."""
        return self._active

    def set_active(self, config: SubnetConfig) -> None:
        """Run ``config`` from now on (:class:`ConfigError` unless it is in the space)."""
        self._active = self.space.canonical(config)

    def block(self, index: int) -> ElasticBlock:
        """Block ``index``, counted stage by stage as a config's per-block choices are."""
        return cast(ElasticBlock, self.blocks[index])

    def _active_blocks(self, config: SubnetConfig) -> list[tuple[ElasticBlock, int, float]]:
        config = self.space.canonical(config)
        return [
            (self.block(i), config.kernel_sizes[i], config.expand_ratios[i])
            for i in self.space.active_blocks(config)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block, k, e in self._active_blocks(self._active):
            x = block(x, k, e)
        out: torch.Tensor = self.head(x.flatten(2).mean(-1))
        return out

    def export(self, config: SubnetConfig) -> SubnetCNN:
        """``config`` as a plain module with its own copy of the weights (kernel transforms
        applied, channels sliced); its forward equals this network's with ``config`` active.
        It is in eval mode, like a deployed model."""
        blocks = [block.export(k, e) for block, k, e in self._active_blocks(config)]
        net = SubnetCNN(copy.deepcopy(self.stem), blocks, copy.deepcopy(self.head))
        return net.eval()

    def fresh(self, config: SubnetConfig) -> SubnetCNN:
        """A plain module of the shape :meth:`export` gives, freshly initialised (the
        baseline: that sub-network trained from scratch)."""
        blocks = [block.fresh(k, e) for block, k, e in self._active_blocks(config)]
        stem = _stem(self.arch)
        _init(stem)
        return SubnetCNN(stem, blocks, nn.Linear(self.arch.widths[-1], self.arch.num_classes))

    def param_count(self, config: SubnetConfig) -> int:
        """Parameters of the sub-network ``config`` (those of its export)."""
        arch = self.arch
        w0, w_last = arch.widths[0], arch.widths[-1]
        stem = arch.input_shape[0] * w0 * math.prod((_STEM_KERNEL,) * arch.dims) + 2 * w0
        head = w_last * arch.num_classes + arch.num_classes
        blocks = sum(b.param_count(k, e) for b, k, e in self._active_blocks(config))
        return stem + blocks + head

    def macs(self, config: SubnetConfig) -> int:
        """Multiply-accumulates of one item through the sub-network ``config`` (its
        convolutions and head; norms, activations and pooling not counted): a proxy for its
        cost, not its energy, which selection measures."""
        arch = self.arch
        stem_positions = math.prod(arch.input_shape[1:])
        kernel = math.prod((_STEM_KERNEL,) * arch.dims)
        stem = stem_positions * arch.input_shape[0] * arch.widths[0] * kernel
        config = self.space.canonical(config)
        blocks = sum(
            self.block(i).macs(config.kernel_sizes[i], config.expand_ratios[i], self._positions[i])
            for i in self.space.active_blocks(config)
        )
        return stem + blocks + arch.widths[-1] * arch.num_classes

    def activations(self, config: SubnetConfig) -> int:
        """Elements of one item through the hidden (expanded) layers of the sub-network
        ``config``: hidden channels times positions, expand and depthwise outputs, summed
        over its blocks (what its norms and activations touch; a cost proxy MACs miss)."""
        config = self.space.canonical(config)
        total = 0
        for i in self.space.active_blocks(config):
            p_in, p_out = self._positions[i]
            total += self.block(i).hidden(config.expand_ratios[i]) * (p_in + p_out)
        return total

    def sort_channels(self) -> None:
        """Sort every block's hidden channels by importance (the paper's channel sorting,
        before the width phase of progressive shrinking); the largest network's function is
        unchanged, smaller widths then keep the most important channels. Optimiser state of
        the moved weights is not moved: make a new optimiser after."""
        for i in range(len(self.blocks)):
            self.block(i).sort_channels()


def elastic_network(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    stages: int = 3,
    max_depth: int = 3,
    widths: tuple[int, ...] | None = None,
    depth_choices: tuple[int, ...] | None = None,
    kernel_choices: tuple[int, ...] = (3, 5, 7),
    expand_choices: tuple[float, ...] = (2.0, 4.0, 6.0),
) -> ElasticCNN:
    """An elastic CNN for inputs of ``input_shape``: 1-D convolutions for ``(C, L)``,
    2-D for ``(C, H, W)``.

    Args:
        input_shape: one input's shape.
        num_classes: outputs.
        stages: stages of blocks.
        max_depth: most blocks per stage.
        widths: channels per stage (default 16, 24, 32, ... growing by 8).
        depth_choices: blocks a stage may run (default ``1..max_depth``).
        kernel_choices: depthwise kernel sizes (odd).
        expand_choices: expand ratios (hidden channels per input channel).

    Raises:
        ConfigError: a shape, width or choice that does not fit.
    """
    space = ElasticSpace(
        stages,
        max_depth,
        depth_choices or tuple(range(1, max_depth + 1)),
        tuple(kernel_choices),
        tuple(float(e) for e in expand_choices),
    )
    if widths is None:
        widths = tuple(16 + 8 * s for s in range(stages))
    arch = ElasticArch(tuple(input_shape), num_classes, tuple(widths), space)
    return ElasticCNN(arch)
