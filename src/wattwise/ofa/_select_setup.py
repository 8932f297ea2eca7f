"""What :func:`~wattwise.ofa.select` is set up with before it measures: its search settings,
checked (``auto`` resolved), and its target (the network on its device, the validation
inputs, the protocol and the conditions a measurement depends on: the cache's key).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.ofa._predict import FEATURES
from wattwise.ofa._select_pool import SelectInputs, network_fingerprint
from wattwise.ofa._space import ElasticNetwork, ElasticSpace
from wattwise.protocol import LeverContext, Protocol
from wattwise.train import resolve_device

if TYPE_CHECKING:
    from wattwise.workloads import DataSplit

__all__ = ["ENERGY_MODES", "SEARCHES", "SearchSettings", "SelectTarget"]

#: The searches :func:`~wattwise.ofa.select` knows.
SEARCHES = ("auto", "exhaustive", "evolution")

#: How a search sees a candidate's cost: every candidate measured, or a predictor fitted to
#: a measured calibration set (only the choices measured).
ENERGY_MODES = ("predicted", "measured")


@dataclass(frozen=True)
class SearchSettings:
    """How one :func:`~wattwise.ofa.select` call searches: its arguments, checked, with
    ``search`` resolved; ``small``: the space holds no more sub-networks than the
    calibration set, so every one is measured and ``energy`` is ``measured``."""

    search: str
    population: int
    generations: int
    mutate_prob: float
    max_measured: int
    seed: int
    confirm: int
    energy: str
    calibration: int
    predict_margin: float
    small: bool

    @classmethod
    def checked(
        cls,
        space: ElasticSpace,
        *,
        batch_size: int,
        search: str,
        population: int,
        generations: int,
        mutate_prob: float,
        max_measured: int,
        seed: int,
        confirm: int,
        energy: str,
        calibration: int,
        predict_margin: float,
    ) -> SearchSettings:
        """The settings, after checking the numbers.

        Raises:
            ConfigError: a bad search setting.
        """
        search = _check(
            search, space, batch_size=batch_size, population=population,
            generations=generations, mutate_prob=mutate_prob, max_measured=max_measured,
            confirm=confirm, energy=energy, calibration=calibration,
            predict_margin=predict_margin,
        )  # fmt: skip
        small = energy == "predicted" and space.size() <= calibration
        if small:  # the calibration would be the whole space: measure it, predict nothing
            energy = "measured"
        return cls(
            search, population, generations, mutate_prob, max_measured, seed, confirm, energy,
            calibration, predict_margin, small,
        )  # fmt: skip

    @property
    def exhaustive(self) -> bool:
        return self.search == "exhaustive"

    @property
    def predicted(self) -> bool:
        return self.energy == "predicted"

    def params(self) -> dict[str, Any]:
        """The settings as the study's parameters."""
        return {
            "search": self.search,
            "population": self.population,
            "generations": self.generations,
            "max_measured": self.max_measured,
            "seed": self.seed,
            "energy": self.energy,
            **(
                {"calibration": self.calibration, "predict_margin": self.predict_margin}
                if self.predicted
                else {}
            ),
        }

    def planned(self, space: ElasticSpace) -> int:
        """The candidates the selection expects to measure (its progress' total)."""
        if self.predicted:
            return self.calibration
        return space.size() if self.exhaustive else self.max_measured


@dataclass(frozen=True)
class SelectTarget:
    """What a selection measures, and where: the network on its device, the validation
    inputs, the protocol, the network's name (``label``) and the conditions a measurement
    depends on (``key``, the cache's key)."""

    net: ElasticNetwork
    inputs: SelectInputs
    device: torch.device
    protocol: Protocol
    label: str
    key: dict[str, Any]

    @classmethod
    def of(
        cls,
        net: ElasticNetwork,
        data: DataSplit,
        batch_size: int,
        device: str | torch.device,
        context: LeverContext,
        protocol: Protocol,
        network: str | None,
        meters_label: str | None,
    ) -> SelectTarget:
        """Resolve the device, move the network there and take its inputs and conditions.

        Raises:
            ConfigError: a device that is not here.
        """
        assert isinstance(net, nn.Module)
        dev = resolve_device(device)
        net.to(dev)
        inputs = SelectInputs.of(data, batch_size, dev)
        label = network or type(net).__name__
        key = _conditions(net, data, batch_size, dev, context, protocol, meters_label)
        return cls(net, inputs, dev, protocol, label, key)


def _check(
    search: str,
    space: ElasticSpace,
    *,
    batch_size: int,
    population: int,
    generations: int,
    mutate_prob: float,
    max_measured: int,
    confirm: int,
    energy: str = "measured",
    calibration: int = 0,
    predict_margin: float = 0.0,
) -> str:
    """The search to run (``auto`` resolved), after checking the numbers."""
    if search not in SEARCHES:
        raise ConfigError(f"unknown search {search!r} (use {', '.join(SEARCHES)})")
    if energy not in ENERGY_MODES:
        raise ConfigError(f"unknown energy mode {energy!r} (use {', '.join(ENERGY_MODES)})")
    if energy == "predicted":
        if confirm < 1 and space.size() > calibration:
            raise ConfigError(
                "energy='predicted' measures its choices: confirm must be >= 1 candidate per "
                f"budget, got {confirm}"
            )
        least = len(FEATURES) + 2  # the fit's coefficients and a residual spread
        if not least <= calibration <= max_measured:
            raise ConfigError(
                f"the calibration set must be {least} to max_measured ({max_measured}) "
                f"sub-networks, got {calibration}"
            )
        if not 0.0 <= predict_margin < 100.0:
            raise ConfigError(
                f"the predict margin must be >= 0 sigma (and < 100), got {predict_margin}"
            )
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if population < 2 or generations < 0:
        raise ConfigError(
            f"the population must be >= 2 and generations >= 0, got {population} and {generations}"
        )
    if confirm < 0:
        raise ConfigError(f"confirm must be >= 0 candidates per budget, got {confirm}")
    if not 0.0 <= mutate_prob <= 1.0:
        raise ConfigError(f"the mutation probability must be in [0, 1], got {mutate_prob}")
    if max_measured < 1:
        raise ConfigError(f"max_measured must be >= 1 candidate, got {max_measured}")
    size = space.size()
    if energy == "predicted" and size <= calibration:
        return "exhaustive"  # every sub-network is measured: see select()
    if search == "auto":
        return "exhaustive" if size <= max_measured else "evolution"
    if search == "exhaustive" and size > max_measured:
        raise ConfigError(
            f"the space holds {size} sub-networks, more than the {max_measured} a selection "
            "may measure: use the evolution search or raise the bound"
        )
    return search


def _conditions(
    net: nn.Module,
    data: DataSplit,
    batch_size: int,
    dev: torch.device,
    context: LeverContext,
    protocol: Protocol,
    meters_label: str | None,
) -> dict[str, Any]:
    """What a measurement depends on: the cache's key."""
    if meters_label is None:
        made = context.meters() if context.meters is not None else None
        meters_label = "auto" if made is None else ",".join(type(m).__name__ for m in made)
    assert isinstance(net, ElasticNetwork)
    return {
        "fingerprint": network_fingerprint(net, net.space),
        "dataset": data.name,
        "batch_size": batch_size,
        "device": str(dev),
        "scope": str(context.scope.value),
        "meters": meters_label,
        "host": socket.gethostname(),
        "protocol": protocol.to_dict(),
    }
