"""A run's figures so far, as one frozen snapshot: what a monitor (Prometheus) reads.

:meth:`Tracker.live` builds one under the tracker's lock from its ledger (a running run) or
from its result (a finished one); the machine exporter builds them from its own meters. A
snapshot says, per component, the energy so far with its uncertainty and provenance, the
power over the last reading, and whether the component is in a gap now, so that a reader
never shows an unknown power as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from wattwise._errors import ConfigError
from wattwise._records import ComponentEnergy, RunResult, RunStatus, Scope, counted_totals
from wattwise.tracking._ledger import RunLedger

__all__ = [
    "DEFAULT_PROMETHEUS_ADDR",
    "PROMETHEUS_ADDR_ENV",
    "PROMETHEUS_PORT_ENV",
    "LiveComponent",
    "LiveRun",
    "live_from_energies",
    "live_from_ledger",
    "live_from_result",
    "prometheus_address",
]

#: The port (or ``ADDR:PORT``) a tracker serves its run on when given none.
PROMETHEUS_PORT_ENV = "WATTWISE_PROMETHEUS_PORT"
#: The address it listens on, when the port alone is given.
PROMETHEUS_ADDR_ENV = "WATTWISE_PROMETHEUS_ADDR"
#: Every interface, as ``prometheus_client`` and the Prometheus exporters do.
DEFAULT_PROMETHEUS_ADDR = "0.0.0.0"


@dataclass(frozen=True)
class LiveComponent:
    """One component of a run, now.

    Attributes:
        energy: its energy so far (J), uncertainty (J), gap time (s) and provenance.
        power_w: its mean power over the last reading, in W; None in a gap, before its
            first reading, or once the run has ended.
        in_gap: whether its last reading failed (the power now is unknown).
    """

    energy: ComponentEnergy
    power_w: float | None
    in_gap: bool


@dataclass(frozen=True)
class LiveRun:
    """A run's figures so far (the final ones once it ended).

    Attributes:
        run_id: the run's id.
        name: the run's name.
        scope: machine or process.
        status: running while it runs, then how it ended.
        started_at: UTC start time.
        elapsed_s: seconds measured so far (the run's duration once ended).
        energy_j: counted energy so far, in J.
        uncertainty_j: its uncertainty, in J (as the run's result combines it).
        components: every component, counted or not.
        emissions_g: the run's emissions in gCO2e, once ended and computed; else None.
        zone: the grid zone of ``emissions_g``, when it is set.
    """

    run_id: str
    name: str
    scope: Scope
    status: RunStatus
    started_at: datetime
    elapsed_s: float
    energy_j: float
    uncertainty_j: float
    components: tuple[LiveComponent, ...]
    emissions_g: float | None = None
    zone: str | None = None


def live_from_energies(
    *,
    run_id: str,
    name: str,
    scope: Scope,
    started_at: datetime,
    elapsed_s: float,
    energies: tuple[ComponentEnergy, ...],
    power_w: Mapping[str, float | None],
    in_gap: frozenset[str] | set[str],
) -> LiveRun:
    """The snapshot of a running run from its per-component energies so far."""
    energy, uncertainty = counted_totals(energies)
    return LiveRun(
        run_id=run_id,
        name=name,
        scope=scope,
        status=RunStatus.RUNNING,
        started_at=started_at,
        elapsed_s=elapsed_s,
        energy_j=energy,
        uncertainty_j=uncertainty,
        components=tuple(
            LiveComponent(
                energy=e,
                power_w=None if e.name in in_gap else power_w.get(e.name),
                in_gap=e.name in in_gap,
            )
            for e in energies
        ),
    )


def live_from_ledger(ledger: RunLedger, run_id: str, scope: Scope, started_at: datetime) -> LiveRun:
    """The snapshot of a running run from its ledger (the caller holds the tracker's lock)."""
    return live_from_energies(
        run_id=run_id,
        name=ledger.root.name,
        scope=scope,
        started_at=started_at,
        elapsed_s=ledger.last_tick - ledger.t0,
        energies=ledger.root.acc.energies(ledger.components),
        power_w=ledger.last_power_w,
        in_gap=set(ledger.open_gaps),
    )


def live_from_result(result: RunResult) -> LiveRun:
    """The snapshot of a run that has ended: its final figures, no power."""
    return LiveRun(
        run_id=result.run_id,
        name=result.name,
        scope=result.scope,
        status=result.status,
        started_at=result.started_at,
        elapsed_s=result.duration_s,
        energy_j=result.energy_j,
        uncertainty_j=result.uncertainty_j,
        components=tuple(
            LiveComponent(energy=e, power_w=None, in_gap=False) for e in result.components
        ),
        emissions_g=result.carbon.emissions_g if result.carbon is not None else None,
        zone=result.carbon.zone if result.carbon is not None else None,
    )


def prometheus_address(
    value: int | str | None, environ: Mapping[str, str], *, what: str = "prometheus"
) -> tuple[str, int] | None:
    """Where to serve metrics: ``value`` (a port, ``"PORT"`` or ``"ADDR:PORT"``), else
    ``WATTWISE_PROMETHEUS_PORT``; the address defaults to ``WATTWISE_PROMETHEUS_ADDR``, else
    every interface. None when neither is set: nothing is served unless asked for.

    Raises:
        ConfigError: the port is not a whole number in 1..65535.
    """
    if value is None or value == "":
        value = environ.get(PROMETHEUS_PORT_ENV) or None
        what = PROMETHEUS_PORT_ENV
        if value is None:
            return None
    addr = environ.get(PROMETHEUS_ADDR_ENV) or DEFAULT_PROMETHEUS_ADDR
    text = str(value).strip()
    if ":" in text:
        addr, _, text = text.rpartition(":")
        addr = addr.strip("[]") or DEFAULT_PROMETHEUS_ADDR
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"{what} must be a port number from 1 to 65535 (or ADDR:PORT), got {value}"
        )
    return addr, port
