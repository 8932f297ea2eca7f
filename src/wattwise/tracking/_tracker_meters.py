"""The meters as a tracker drives them: started, read, the idle baseline, process shares.

The tracker (``_tracker.py``) holds the order of its life; this module holds what it does
with the meters at each step: start the ones that work (warning about the others), read them
all at one instant, measure the idle power before the run, and tell which share of each
component process scope charges.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import psutil

from wattwise._errors import ConfigError, MeterError, WattwiseError
from wattwise._records import Scope
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Reading
from wattwise.meters._registry import detect_meters
from wattwise.tracking._clock import Clock
from wattwise.tracking._scope import ProcessTreeShare

__all__ = [
    "CPU_SHARED_KINDS",
    "Warn",
    "component_shares",
    "kind_shares",
    "measure_baseline",
    "read_meters",
    "share_cpus",
    "start_meters",
]

#: The components process scope charges by the process tree's share of CPU time.
CPU_SHARED_KINDS = frozenset(
    {
        ComponentKind.CPU,
        ComponentKind.DRAM,
        ComponentKind.CPU_CORE,
        ComponentKind.CPU_UNCORE,
        ComponentKind.PSYS,
    }
)


class Warn(Protocol):
    """The tracker's warning: kept with the run and logged once."""

    def __call__(self, message: str, *, about_machine: bool = False) -> None: ...


def start_meters(
    meters: Sequence[Meter] | None,
    *,
    cpu_tdp_w: float | None,
    clock: Clock,
    warn: Warn,
    warnings: Sequence[str],
) -> tuple[list[Meter], dict[Meter, list[Component]]]:
    """Start ``meters`` (default: the detected ones); a meter that fails is warned about.

    Returns the started meters and each one's components.

    Raises:
        WattwiseError: no meter could be started (``warnings`` say why).
        ConfigError: two meters report components of the same name.
    """
    chosen = list(meters) if meters is not None else detect_meters(cpu_tdp_w=cpu_tdp_w).meters
    components: dict[Meter, list[Component]] = {}
    started = []
    now = clock.monotonic()
    for m in chosen:
        try:
            components[m] = m.start(now)
        except MeterError as exc:
            warn(f"{m.name}: {exc}")
            continue
        started.append(m)
        hint = getattr(m, "hint", None)
        if isinstance(hint, str) and hint:
            warn(hint, about_machine=True)
    if not started:
        raise WattwiseError("no energy meter could be started: " + "; ".join(warnings))
    names = [c.name for m in started for c in components[m]]
    if len(names) != len(set(names)):
        raise ConfigError(f"two meters report components of the same name: {names}")
    return started, components


def read_meters(meters: Sequence[Meter], now: float) -> list[Reading]:
    """Every meter's readings at ``now``."""
    readings: list[Reading] = []
    for m in meters:
        readings.extend(m.read(now))
    return readings


def measure_baseline(
    meters: Sequence[Meter], clock: Clock, baseline_s: float, warn: Warn
) -> dict[str, float]:
    """Each component's idle power over ``baseline_s`` s, in W (those read throughout)."""
    start = clock.monotonic()
    read_meters(meters, start)
    clock.sleep(baseline_s)
    end = clock.monotonic()
    energy: dict[str, float] = {}
    for r in read_meters(meters, end):
        if r.energy_j is None:
            warn(f"baseline: {r.component} could not be read ({r.note})")
            continue
        if r.since_s is not None and r.since_s < start:
            warn(f"baseline: {r.component} could not be read at the baseline's start")
            continue
        energy[r.component] = r.energy_j
    return {k: v / (end - start) for k, v in energy.items()}


def share_cpus(components: Sequence[Component]) -> range | None:
    """The CPUs whose busy time process scope shares out.

    A measured CPU component (RAPL) covers whole packages, so the share is of every CPU;
    the estimate charges only the CPUs this process may run on (the default).
    """
    measured = any(
        c.kind in CPU_SHARED_KINDS and c.source.method is Method.MEASURED for c in components
    )
    return range(psutil.cpu_count(logical=True) or 1) if measured else None


def kind_shares(scope: Scope, share: ProcessTreeShare) -> dict[ComponentKind, float]:
    """Process scope's share of each kind of component (none in machine scope)."""
    if scope is Scope.MACHINE:
        return {}
    cpu = share.cpu_share()
    shares = dict.fromkeys(CPU_SHARED_KINDS, cpu)
    shares[ComponentKind.RAM] = share.memory_share()
    return shares


def component_shares(
    scope: Scope, share: ProcessTreeShare, meters: Sequence[Meter]
) -> dict[str, float]:
    """Process scope's per-component shares the meters can tell (a shared GPU's)."""
    if scope is Scope.MACHINE:
        return {}
    pids = share.pids()
    return {k: v for m in meters for k, v in m.process_shares(pids).items()}
