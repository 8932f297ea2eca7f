"""The space of sub-networks of one elastic network, and the contract such a network keeps.

An elastic network (Cai et al., "Once-for-All", ICLR 2020) is ``stages`` stages of up to
``max_depth`` blocks each. A sub-network is chosen by three elastic dimensions:

* **depth**: how many blocks of each stage run (the first ``d``; the rest are skipped);
* **kernel size**: the kernel of each block's depthwise convolution (a centre crop of the
  largest kernel, through a learned transform);
* **expand ratio** (width): the hidden channels of each block, as a multiple of its input
  channels (the most important channels first).

A :class:`SubnetConfig` names one choice per stage (depth) and per block (kernel, expand
ratio). The choices of blocks a stage skips do not change the network, so every config has a
**canonical** form (skipped blocks set to the largest choice) and a :attr:`SubnetConfig.key`
that names the sub-network, not the config.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from torch import nn

from wattwise._errors import ConfigError
from wattwise._records.base import Record

__all__ = ["ElasticNetwork", "ElasticSpace", "SubnetConfig"]


@dataclass(frozen=True)
class SubnetConfig(Record):
    """One sub-network: blocks per stage, and each block's kernel size and expand ratio.

    Attributes:
        depths: blocks run in each stage (one entry per stage).
        kernel_sizes: kernel size of each block, stage by stage (``stages * max_depth``).
        expand_ratios: expand ratio of each block, stage by stage (``stages * max_depth``).
    """

    depths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[float, ...]

    @property
    def key(self) -> str:
        """A short stable name, e.g. ``d2-3|k5-3-7-7-7-7|e4-6-...`` (use on canonical
        configs: :meth:`ElasticSpace.canonical`)."""
        d = "-".join(str(v) for v in self.depths)
        k = "-".join(str(v) for v in self.kernel_sizes)
        e = "-".join(f"{v:g}" for v in self.expand_ratios)
        return f"d{d}|k{k}|e{e}"


@dataclass(frozen=True)
class ElasticSpace(Record):
    """The choices of an elastic network: what sub-networks it holds.

    Attributes:
        stages: number of stages.
        max_depth: most blocks in a stage.
        depth_choices: blocks a stage may run (each in 1..max_depth).
        kernel_choices: kernel sizes a block may use (odd).
        expand_choices: expand ratios a block may use (> 0).
    """

    stages: int
    max_depth: int
    depth_choices: tuple[int, ...]
    kernel_choices: tuple[int, ...]
    expand_choices: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.stages < 1 or self.max_depth < 1:
            raise ConfigError(
                f"an elastic space needs >= 1 stage and >= 1 block per stage, got "
                f"{self.stages} stages of {self.max_depth}"
            )
        for name, values in (
            ("depth", self.depth_choices),
            ("kernel", self.kernel_choices),
            ("expand", self.expand_choices),
        ):
            if not values:
                raise ConfigError(f"an elastic space needs at least one {name} choice")
            if tuple(sorted(set(values))) != tuple(values):
                raise ConfigError(f"{name} choices must be distinct and increasing, got {values}")
        if not all(1 <= d <= self.max_depth for d in self.depth_choices):
            raise ConfigError(
                f"depth choices must lie in 1..{self.max_depth}, got {self.depth_choices}"
            )
        if not all(k >= 1 and k % 2 == 1 for k in self.kernel_choices):
            raise ConfigError(f"kernel sizes must be odd and >= 1, got {self.kernel_choices}")
        if not all(e > 0 for e in self.expand_choices):
            raise ConfigError(f"expand ratios must be > 0, got {self.expand_choices}")

    @property
    def blocks(self) -> int:
        """Blocks of the largest network (``stages * max_depth``)."""
        return self.stages * self.max_depth

    def largest(self) -> SubnetConfig:
        """The largest sub-network (the whole network)."""
        return SubnetConfig(
            (max(self.depth_choices),) * self.stages,
            (max(self.kernel_choices),) * self.blocks,
            (max(self.expand_choices),) * self.blocks,
        )

    def smallest(self) -> SubnetConfig:
        """The smallest sub-network (canonical)."""
        return self.canonical(
            SubnetConfig(
                (min(self.depth_choices),) * self.stages,
                (min(self.kernel_choices),) * self.blocks,
                (min(self.expand_choices),) * self.blocks,
            )
        )

    def check(self, config: SubnetConfig) -> None:
        """Raise :class:`ConfigError` unless ``config`` is a sub-network of this space."""
        if len(config.depths) != self.stages:
            raise ConfigError(f"the sub-network needs {self.stages} depths, got {config.depths}")
        for name, values, choices in (
            ("kernel size", config.kernel_sizes, self.kernel_choices),
            ("expand ratio", config.expand_ratios, self.expand_choices),
        ):
            if len(values) != self.blocks:
                raise ConfigError(f"the sub-network needs {self.blocks} {name}s, got {len(values)}")
            bad = [v for v in values if v not in choices]
            if bad:
                raise ConfigError(f"{name} {bad[0]:g} is not one of the choices {choices}")
        bad_d = [d for d in config.depths if d not in self.depth_choices]
        if bad_d:
            raise ConfigError(f"depth {bad_d[0]} is not one of the choices {self.depth_choices}")

    def active_blocks(self, config: SubnetConfig) -> list[int]:
        """Indices (into the per-block tuples) of the blocks ``config`` runs."""
        return [s * self.max_depth + b for s, d in enumerate(config.depths) for b in range(d)]

    def canonical(self, config: SubnetConfig) -> SubnetConfig:
        """``config`` with the choices of skipped blocks set to the largest (same network)."""
        self.check(config)
        active = set(self.active_blocks(config))
        k_top, e_top = max(self.kernel_choices), max(self.expand_choices)
        return SubnetConfig(
            config.depths,
            tuple(k if i in active else k_top for i, k in enumerate(config.kernel_sizes)),
            tuple(e if i in active else e_top for i, e in enumerate(config.expand_ratios)),
        )

    def restrict(
        self,
        *,
        depth_choices: tuple[int, ...] | None = None,
        kernel_choices: tuple[int, ...] | None = None,
        expand_choices: tuple[float, ...] | None = None,
    ) -> ElasticSpace:
        """The same network with fewer choices (a phase of progressive shrinking)."""
        return replace(
            self,
            depth_choices=depth_choices or self.depth_choices,
            kernel_choices=kernel_choices or self.kernel_choices,
            expand_choices=expand_choices or self.expand_choices,
        )

    def size(self) -> int:
        """Number of distinct sub-networks (skipped blocks' choices not counted)."""
        per_block = len(self.kernel_choices) * len(self.expand_choices)
        per_stage = sum(per_block**d for d in self.depth_choices)
        return int(per_stage**self.stages)

    def enumerate(self) -> Iterator[SubnetConfig]:
        """Every distinct sub-network once, canonical (beware :meth:`size`)."""
        per_block = list(itertools.product(self.kernel_choices, self.expand_choices))
        k_top, e_top = max(self.kernel_choices), max(self.expand_choices)

        def stage_options() -> Iterator[tuple[int, list[tuple[int, float]]]]:
            for d in self.depth_choices:
                for chosen in itertools.product(per_block, repeat=d):
                    yield d, list(chosen) + [(k_top, e_top)] * (self.max_depth - d)

        for stages in itertools.product(list(stage_options()), repeat=self.stages):
            blocks = [b for _, bs in stages for b in bs]
            yield SubnetConfig(
                tuple(d for d, _ in stages),
                tuple(k for k, _ in blocks),
                tuple(e for _, e in blocks),
            )

    def sample(self, rng: random.Random) -> SubnetConfig:
        """A sub-network drawn uniformly per choice (canonical)."""
        return self.canonical(
            SubnetConfig(
                tuple(rng.choice(self.depth_choices) for _ in range(self.stages)),
                tuple(rng.choice(self.kernel_choices) for _ in range(self.blocks)),
                tuple(rng.choice(self.expand_choices) for _ in range(self.blocks)),
            )
        )

    def mutate(self, config: SubnetConfig, rng: random.Random, prob: float) -> SubnetConfig:
        """``config`` with each choice redrawn with probability ``prob`` (canonical)."""

        def pick(value: float, choices: tuple[float, ...]) -> float:
            return rng.choice(choices) if rng.random() < prob else value

        return self.canonical(
            SubnetConfig(
                tuple(int(pick(d, self.depth_choices)) for d in config.depths),
                tuple(int(pick(k, self.kernel_choices)) for k in config.kernel_sizes),
                tuple(pick(e, self.expand_choices) for e in config.expand_ratios),
            )
        )

    def crossover(self, a: SubnetConfig, b: SubnetConfig, rng: random.Random) -> SubnetConfig:
        """Each choice taken from ``a`` or ``b`` at random (canonical)."""

        def mix(x: tuple[float, ...], y: tuple[float, ...]) -> list[float]:
            return [u if rng.random() < 0.5 else v for u, v in zip(x, y, strict=True)]

        return self.canonical(
            SubnetConfig(
                tuple(int(v) for v in mix(a.depths, b.depths)),
                tuple(int(v) for v in mix(a.kernel_sizes, b.kernel_sizes)),
                tuple(mix(a.expand_ratios, b.expand_ratios)),
            )
        )

    def log10_size(self) -> float:
        """``log10`` of :meth:`size` (the OFA paper's "more than 10^19")."""
        return math.log10(self.size())


@runtime_checkable
class ElasticNetwork(Protocol):
    """What selection, export and the CLI need of an elastic network.

    ``set_active`` chooses the sub-network that ``forward`` runs; ``export`` returns that
    sub-network as a plain module with its own copy of the shared weights, whose forward is
    exactly the elastic network's with that sub-network active.
    """

    @property
    def space(self) -> ElasticSpace: ...

    @property
    def active(self) -> SubnetConfig: ...

    def set_active(self, config: SubnetConfig) -> None: ...

    def export(self, config: SubnetConfig) -> nn.Module: ...
