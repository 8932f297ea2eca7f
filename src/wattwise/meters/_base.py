"""The meter contract: what every energy source must provide.

A meter is the only layer that talks to hardware (or to a model of it). Above this layer
everything is SI floats: joules, watts, seconds. Each meter converts its raw units exactly
once, inside :meth:`Meter.read`.

The whole contract is four methods:

* ``probe()``     -> :class:`Probe`: can this meter work here, and if not, why not.
                     Cheap, no side effects, never raises for ordinary absence.
* ``start()``     -> the :class:`Component` list it will report; takes the first reading.
* ``read(now_s)`` -> one :class:`Reading` per component: the energy since the previous read.
* ``close()``

plus the property ``max_interval_s``: the longest the sampler may wait between two reads
without losing information (for RAPL, half the fastest possible counter wrap).

A reading whose sensor failed carries ``energy_j=None`` and a ``note``: a *gap*. A gap is
never reported as zero energy; the tracker records its duration.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Collection
from dataclasses import dataclass, field

__all__ = [
    "Component",
    "ComponentKind",
    "Meter",
    "Method",
    "Probe",
    "Reading",
    "Source",
]


class Method(enum.StrEnum):
    """Whether a figure was measured by a sensor or estimated by a model."""

    MEASURED = "measured"
    ESTIMATED = "estimated"


class ComponentKind(enum.StrEnum):
    """What part of the machine a component covers."""

    CPU = "cpu"  # a CPU package (RAPL package-N) or an estimated CPU
    DRAM = "dram"  # RAPL dram domain
    CPU_CORE = "cpu-core"  # RAPL core (PP0): part of a package, never added
    CPU_UNCORE = "cpu-uncore"  # RAPL uncore (PP1): part of a package, never added
    PSYS = "psys"  # RAPL platform domain: overlaps packages, added only without them
    GPU = "gpu"  # one GPU device
    ANE = "ane"  # Apple Neural Engine (powermetrics)
    RAM = "ram"  # estimated memory power


@dataclass(frozen=True)
class Source:
    """Where a figure comes from.

    Attributes:
        method: measured or estimated.
        sensor: for measured figures, the sensor (``"rapl-powercap"``,
            ``"nvml-energy-counter"``, ``"nvml-power-sampling"``); for estimated ones, the
            model (``"cpu-tdp-utilisation"``, ``"ram-0.3725-w-per-gb"``).
        detail: free text: the inputs of a model (CPU model, TDP used), a zone path.
    """

    method: Method
    sensor: str
    detail: str = ""

    def label(self) -> str:
        """A short human label, e.g. ``measured (rapl-powercap)``."""
        return f"{self.method.value} ({self.sensor})"


@dataclass(frozen=True)
class Component:
    """One energy-consuming part a meter reports on.

    Attributes:
        name: unique within a run, e.g. ``"cpu:package-0"``, ``"gpu:0"``, ``"ram"``.
        kind: what it covers.
        source: measured or estimated, and how.
        counted: whether it is added into the run's total. Sub-components (RAPL core and
            uncore) and overlapping ones (psys beside packages) are reported, not added.
        device: device index or socket id, where that applies.
        relative_uncertainty: the one-sigma relative uncertainty of this component's
            energy (0.05 = 5%). Estimates always have one; measured sensors state their
            documented accuracy, or 0 where none is documented.
        edge_uncertainty_s: how stale a reading can be at a span's edges, in s (0: not at
            all): the NVML energy counter steps every 20-100 ms, the power reading is a 1 s
            moving average; see :meth:`uncertainty_j`.
    """

    name: str
    kind: ComponentKind
    source: Source
    counted: bool = True
    device: str | None = None
    relative_uncertainty: float = 0.0
    edge_uncertainty_s: float = 0.0

    def uncertainty_j(self, energy_j: float, measured_s: float) -> float:
        """One-sigma uncertainty of ``energy_j`` measured over ``measured_s`` seconds, in J.

        The relative figure, and, where the sensor's readings are stale by up to
        ``edge_uncertainty_s`` (a stepped counter, a moving-average power reading), the mean
        power times that, for the two edges of the span together; the two are independent
        and added in quadrature. Short spans are dominated by the edge term.
        """
        relative = energy_j * self.relative_uncertainty
        if self.edge_uncertainty_s <= 0.0 or measured_s <= 0.0:
            return relative
        return math.hypot(relative, energy_j / measured_s * self.edge_uncertainty_s)


@dataclass(frozen=True)
class Reading:
    """The energy one component used between two consecutive reads.

    Attributes:
        component: the component's name.
        energy_j: energy since the previous read, in J; ``None`` when the sensor could not
            be read (a gap: never zero).
        note: why a gap happened (unreadable file, driver reset), or ``None``.
        utilisation: for estimated CPU components, the utilisation (0..1) the estimate used.
        since_s: where the energy covers more than the last interval, the sampler-clock
            time (s) it starts from. A cumulative counter that was unreadable for a while
            and can be read again reports the whole energy since its last good read, with
            ``since_s`` set to that read's time: the gap is then *recovered*. ``None``: the
            reading covers exactly the interval since the previous read.
    """

    component: str
    energy_j: float | None
    note: str | None = None
    utilisation: float | None = None
    since_s: float | None = None

    @property
    def is_gap(self) -> bool:
        """True when the sensor failed for this interval."""
        return self.energy_j is None


@dataclass(frozen=True)
class Probe:
    """The answer of :meth:`Meter.probe`: usable here or not, and why.

    Attributes:
        meter: the meter's name.
        available: whether :meth:`Meter.start` is expected to succeed.
        reason: one line: what was found, or why nothing was found and how to fix it.
        components: names of what would be reported (may be empty when unavailable).
    """

    meter: str
    available: bool
    reason: str
    components: tuple[str, ...] = field(default_factory=tuple)


class Meter(abc.ABC):
    """The contract every energy source implements. See the module docstring."""

    #: Short unique name of the meter: ``"rapl"``, ``"nvml"``, ``"estimate"``, ``"replay"``.
    name: str = "meter"

    @abc.abstractmethod
    def probe(self) -> Probe:
        """Say whether this meter can work here, cheaply and without raising."""

    @abc.abstractmethod
    def start(self, now_s: float) -> list[Component]:
        """Open the sensor, take the first reading and return the components.

        Args:
            now_s: the sampler's monotonic clock at this instant, in s.

        Raises:
            MeterUnavailable: the sensor is absent.
            MeterPermissionError: the sensor may not be read (message names the fix).
        """

    @abc.abstractmethod
    def read(self, now_s: float) -> list[Reading]:
        """Return, for every component, the energy used since the previous read.

        Never raises for a sensor failure: a failed component gives a gap reading
        (``energy_j=None`` with a ``note``). When the sensor recovers, a counter meter that
        can still tell the energy of the gap exactly (no wrap could have been missed)
        reports it with ``since_s``; otherwise it re-bases on the new counter value and the
        energy of the gap stays unknown.

        Args:
            now_s: the sampler's monotonic clock at this instant, in s.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the sensor. Default: nothing to release."""

    def process_shares(self, pids: Collection[int]) -> dict[str, float]:
        """For process scope: the share (0..1) of a component's energy that the processes
        ``pids`` used since the previous call, for the components the meter can tell
        (NVML: a GPU shared by several processes). The others get their kind's share.
        Default: none."""
        return {}

    @property
    def max_interval_s(self) -> float:
        """The longest safe wait between two reads, in s (default: no limit)."""
        return float("inf")
