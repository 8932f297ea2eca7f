"""CPU package and DRAM energy from RAPL, read through the Linux powercap sysfs interface.

The kernel's ``intel_rapl`` drivers (Intel, and AMD Zen through the same interface) publish
one directory per RAPL domain ("zone") under ``/sys/class/powercap``::

    intel-rapl:0          name=package-0     counted
    intel-rapl:0:0        name=core          reported, part of package-0
    intel-rapl:0:1        name=uncore        reported, part of package-0
    intel-rapl:0:2        name=dram          counted
    intel-rapl:1          name=psys          reported; counted only without packages
    intel-rapl-mmio:0     name=package-0     dropped: the same package once more

Zones are recognised by the content of their ``name`` file, never by their index or path:
indices differ between machines (``psys`` is ``intel-rapl:1`` on one laptop and
``intel-rapl:0`` on another). Each zone has a cumulative ``energy_uj`` counter (µJ) that
wraps to 0 after ``max_energy_range_uj``. This module converts µJ to J once, in
:meth:`RaplMeter.read`, and above it everything is joules.

See ``docs/meters-rapl.md`` for the wrap and gap rules and for read permissions.

Why one module of ~700 lines: discovery (walking the zones, recognising them by name,
dropping mirrored counters), reading (wraps, gaps, recovery) and the probe's explanation all
work on the same zone and counter state (``_Zone``, ``_CounterState``, ``_Discovery``); the
CPU identity and uncertainty tables, which do not, are in ``_rapl_cpu.py``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from wattwise._errors import ConfigError, MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Probe, Reading, Source
from wattwise.meters._rapl_cpu import _GENERATION_LABELS, CpuIdentity

__all__ = [
    "DEFAULT_POWERCAP_ROOT",
    "DEFAULT_ZONE_MAX_POWER_W",
    "POWERCAP_ROOT_ENV",
    "RAPL_SENSOR",
    "CpuIdentity",
    "RaplMeter",
]

#: Environment variable naming the powercap root when none is passed to :class:`RaplMeter`.
POWERCAP_ROOT_ENV = "WATTWISE_POWERCAP_ROOT"
#: Where Linux publishes powercap zones.
DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
#: Power (W) assumed for a zone that states no maximum power when no CPU TDP is given
#: either. No single-socket x86 CPU package is sold above 500 W TDP today, so a counter
#: cannot wrap faster than it would at this power; erring high only makes reads more
#: frequent, never loses energy.
DEFAULT_ZONE_MAX_POWER_W = 500.0
#: The sensor name carried by every :class:`Source` this meter reports.
RAPL_SENSOR = "rapl-powercap"

_UJ_PER_J = 1_000_000
# The max power of a zone is its long-term limit (PL1) or a TDP, and CPUs draw more than
# that for long: AMD's package power limit (PPT) is 1.35x the TDP (a 7950X: 230 W at 170 W
# TDP), Intel's PL2 is up to about 2x PL1 and boards that lift the limits run desktop parts
# at about 2.6x (330 W at 125 W). A counter difference is trusted, after a gap or a late
# read, only over a span in which it cannot wrap even at this multiple of the max power;
# over a longer span a wrap cannot be excluded and the energy is lost, not recovered.
_CEILING_FACTOR = 4.0
# The sampler is asked to read twice as often as that span, so that a read a little late
# (scheduling jitter) is still trusted.
_SAMPLER_MARGIN = 2.0
# Two zones of the same kind on the same socket with the same range show one counter (the
# die zones of AMD Zen 1 and some Zen 2 parts all mirror the socket's counter) when one's
# value lies between two reads of the other taken within 1 J of each other. Two separate
# counters pass that by chance with probability about 1 J / range (1.5e-5 for 65,536 J).
# Reads further apart than 1 J (a preempted reader) are tried again, a few times.
_MIRROR_WINDOW_UJ = 1_000_000
_MIRROR_TRIES = 3
# The control type of the MSR interface; zones of other control types (intel-rapl-mmio)
# that repeat one of its zones are dropped.
_PREFERRED_CONTROL_TYPE = "intel-rapl"

_ZONE_DIR = re.compile(r"^(?P<control>[^:/]+)(?::\d+)+$")
_PACKAGE_NAME = re.compile(r"^package-(?P<socket>\d+)(?:-die-\d+)?$")
_MAX_POWER_FILE = re.compile(r"^constraint_\d+_max_power_uw$")
_SUBZONE_KINDS = {
    "dram": ComponentKind.DRAM,
    "core": ComponentKind.CPU_CORE,
    "uncore": ComponentKind.CPU_UNCORE,
}


@dataclass(frozen=True)
class _Zone:
    """One RAPL zone this meter reads (device layer: raw units, µJ)."""

    entry: Path  # the path it was found by, under the root (for messages and sources)
    real: Path  # its real directory
    zone_id: str  # the directory name, e.g. "intel-rapl:0:2"
    label: str  # the content of its ``name`` file, e.g. "dram"
    component: Component
    range_uj: int  # max_energy_range_uj: the largest value the counter shows
    max_power_w: float
    max_power_basis: str  # where max_power_w comes from, for messages

    @property
    def energy_path(self) -> Path:
        return self.real / "energy_uj"

    @property
    def wrap_period_s(self) -> float:
        """The time (s) in which the counter goes once around its range at its max power."""
        return (self.range_uj + 1) / _UJ_PER_J / self.max_power_w

    @property
    def trusted_span_s(self) -> float:
        """The longest span (s) over which a counter difference is trusted: no wrap can
        happen in it even at :data:`_CEILING_FACTOR` times the zone's max power."""
        return self.wrap_period_s / _CEILING_FACTOR


@dataclass
class _CounterState:
    last_uj: int | None  # the last good counter value; None: none yet
    last_s: float  # the sampler time of that value (or of start)
    failing: bool = False  # the previous read(s) since last_s failed

    def rebase(self, value_uj: int, now_s: float) -> None:
        self.last_uj = value_uj
        self.last_s = now_s
        self.failing = False


@dataclass(frozen=True)
class _Discovery:
    zones: tuple[_Zone, ...]
    skipped: tuple[str, ...]  # one short phrase per zone left out, and why
    mirrors: tuple[tuple[int, int], ...] = ()  # (zone index, index of the zone it mirrors)
    cpu: CpuIdentity = field(default_factory=CpuIdentity)  # sets the components' uncertainty


class RaplMeter(Meter):
    """CPU package and DRAM energy measured by RAPL through Linux powercap sysfs.

    The machine's CPU energy is the sum of the ``package-N`` zones plus the ``dram`` zones.
    ``core`` and ``uncore`` zones are reported as parts of their package and never added;
    ``psys`` (the platform) is reported, and added only where no package zone exists.
    Multi-socket machines have one package (and dram) zone per socket; AMD Zen CPUs expose
    theirs through the same interface.

    The constructor only stores its arguments; the tree is read by :meth:`probe` and
    :meth:`start`.

    Args:
        root: the powercap directory. Default: the ``WATTWISE_POWERCAP_ROOT`` environment
            variable, else ``/sys/class/powercap``. Tests pass a :class:`FakePowercap` root.
        cpu_tdp_w: the CPU's thermal design power per package, in W. Used only to bound how
            fast a counter can wrap for zones that state no maximum power (AMD zones have no
            power-limit constraints). Default: :data:`DEFAULT_ZONE_MAX_POWER_W` per zone.
        cpu: the CPU the counters belong to, which sets each component's relative
            uncertainty (docs/meters-rapl.md). Default: read from ``/proc/cpuinfo`` at
            :meth:`start`; tests pass the identity a fake tree stands for.
    """

    name = "rapl"

    def __init__(
        self,
        root: str | Path | None = None,
        cpu_tdp_w: float | None = None,
        cpu: CpuIdentity | None = None,
    ) -> None:
        self.root = root
        self.cpu_tdp_w = cpu_tdp_w
        self.cpu = cpu
        self._zones: tuple[_Zone, ...] = ()
        self._counters: list[_CounterState] = []
        self._mirrors: dict[int, int] = {}  # zone index -> the zone it mirrors
        self._apart: set[int] = set()  # mirrors whose counters were seen to differ
        self._started = False

    # -- the contract -------------------------------------------------------------------

    def probe(self) -> Probe:
        """Say whether RAPL counters can be read here; never raises."""
        root = self._root()
        try:
            found = _with_mirrors(self._discover(root))
        except (MeterError, ConfigError) as exc:
            return Probe(meter=self.name, available=False, reason=str(exc))
        denied: list[_Zone] = []
        failures: list[str] = []
        for zone in found.zones:
            try:
                _read_uj(zone.energy_path)
            except PermissionError:
                denied.append(zone)
            except (OSError, ValueError) as exc:
                # One failing zone is a gap at read time, not a reason to give up.
                failures.append(f"{zone.zone_id}: {_why(exc)}")
        names = tuple(z.component.name for z in found.zones)
        if denied:
            return Probe(self.name, False, _permission_fix(root, denied), names)
        if len(failures) == len(found.zones):
            return Probe(self.name, False, _none_readable(root, failures), names)
        return Probe(self.name, True, _summary(root, found), names)

    def start(self, now_s: float) -> list[Component]:
        """Find the zones, take the first counter values and return the components.

        Args:
            now_s: the sampler's monotonic clock, in s.

        Raises:
            MeterUnavailable: no powercap tree, no RAPL zone in it, or no counter readable.
            MeterPermissionError: the counters are root-only; the message names the fix.
            ConfigError: ``cpu_tdp_w`` is not a positive number.
        """
        root = self._root()
        found = _with_mirrors(self._discover(root))
        counters: list[_CounterState] = []
        denied: list[_Zone] = []
        failures: list[str] = []
        for zone in found.zones:
            try:
                value: int | None = _read_uj(zone.energy_path)
            except PermissionError:
                denied.append(zone)
                continue
            except (OSError, ValueError) as exc:
                # Started without a baseline: its first good read re-bases and is a gap.
                value = None
                failures.append(f"{zone.zone_id}: {_why(exc)}")
            counters.append(_CounterState(last_uj=value, last_s=now_s, failing=value is None))
        if denied:
            raise MeterPermissionError(_permission_fix(root, denied))
        if len(failures) == len(found.zones):
            raise MeterUnavailable(_none_readable(root, failures))
        self._zones = found.zones
        self._counters = counters
        self._mirrors = dict(found.mirrors)
        self._apart = set()
        self._started = True
        return [z.component for z in self._zones]

    def read(self, now_s: float) -> list[Reading]:
        """Return each zone's energy since the previous read, in J.

        A counter that cannot be read gives a gap (``energy_j=None`` with a note). When it
        can be read again within its trusted span of the last good read (no wrap even at
        four times its max power), the whole energy since that read is reported with
        ``since_s`` (the gap is recovered); otherwise the counter is re-based and that read
        is a gap saying the energy is lost.

        A die zone found at start to mirror another one is checked at every read; if the
        two counters turn out to differ, its energy is added to the other's reading from
        then on (its own component stays not counted).

        Args:
            now_s: the sampler's monotonic clock, in s.

        Raises:
            MeterError: called before :meth:`start` or after :meth:`close`.
        """
        if not self._started:
            raise MeterError("RaplMeter.read() called before start() or after close()")
        readings = [
            _read_zone(zone, counter, now_s)
            for zone, counter in zip(self._zones, self._counters, strict=True)
        ]
        for index, twin in self._mirrors.items():
            first = False
            if index not in self._apart:
                if readings[index].is_gap or readings[twin].is_gap:
                    continue
                if _same_counter(self._zones[twin], self._zones[index]) is not False:
                    continue
                self._apart.add(index)
                first = True
            readings[twin] = _merged(readings[twin], readings[index], first=first)
        return readings

    def close(self) -> None:
        """Forget the zones; powercap files are opened per read, so nothing stays open."""
        self._zones = ()
        self._counters = []
        self._mirrors = {}
        self._apart = set()
        self._started = False

    @property
    def max_interval_s(self) -> float:
        """Half the shortest trusted span over the zones (an eighth of the fastest wrap
        period at the zones' max power), in s.

        Before :meth:`start` the tree is looked at afresh; where it has no readable zone
        there is nothing to lose and the answer is infinity.
        """
        zones = self._zones
        if not self._started:
            try:
                zones = self._discover(self._root()).zones
            except (MeterError, ConfigError):
                return math.inf
        if not zones:
            return math.inf
        return min(z.trusted_span_s for z in zones) / _SAMPLER_MARGIN

    # -- discovery ----------------------------------------------------------------------

    def _root(self) -> Path:
        if self.root is not None:
            return Path(self.root)
        from_env = os.environ.get(POWERCAP_ROOT_ENV)
        return Path(from_env) if from_env else DEFAULT_POWERCAP_ROOT

    def _discover(self, root: Path) -> _Discovery:
        """Walk the tree and classify its zones.

        Raises:
            MeterUnavailable: no tree, or no usable RAPL zone in it.
            MeterPermissionError: the tree itself may not be listed.
            ConfigError: ``cpu_tdp_w`` is not a positive number.
        """
        tdp = self.cpu_tdp_w
        if tdp is not None and not (math.isfinite(tdp) and tdp > 0):
            raise ConfigError(f"cpu_tdp_w must be a positive number of watts, got {tdp!r}")
        if not root.is_dir():
            raise MeterUnavailable(
                f"no powercap tree at {root}: no RAPL here (not Linux, a VM or container "
                "without it, or the intel_rapl_msr driver not loaded)"
            )
        try:
            entries = _walk(root)
        except PermissionError as exc:
            raise MeterPermissionError(
                f"cannot list the powercap tree at {root} ({_why(exc)}): run with read access"
            ) from exc
        except OSError as exc:
            raise MeterUnavailable(f"cannot list the powercap tree at {root}: {_why(exc)}") from exc

        labels: dict[Path, str] = {}
        skipped: list[str] = []
        for real, entry in entries.items():
            try:
                labels[real] = (real / "name").read_text(encoding="utf-8").strip()
            except OSError as exc:
                skipped.append(f"{entry.name} (name unreadable: {_why(exc)})")

        # Keep the MSR interface's zones first; a zone of another control type that repeats
        # one of them (same name under a parent of the same name) is the same hardware.
        ordered = sorted(labels, key=lambda real: _order_key(real.name))
        kept: list[Path] = []
        identities: dict[tuple[str, str | None], str] = {}
        for real in ordered:
            control = _control_type(real.name)
            identity = (labels[real], labels.get(real.parent))
            first_control = identities.setdefault(identity, control)
            if first_control != control:
                skipped.append(f"{real.name} ({labels[real]}, repeats {first_control})")
                continue
            kept.append(real)

        ranges: dict[Path, int] = {}
        for real in kept:
            try:
                range_uj = int((real / "max_energy_range_uj").read_text(encoding="ascii"))
            except (OSError, ValueError) as exc:
                skipped.append(f"{real.name} (max_energy_range_uj unreadable: {_why(exc)})")
                continue
            if range_uj <= 0:
                skipped.append(f"{real.name} (max_energy_range_uj is {range_uj})")
                continue
            ranges[real] = range_uj

        has_package = any(_PACKAGE_NAME.match(labels[r]) for r in ranges)
        cpu = self.cpu if self.cpu is not None else CpuIdentity.from_cpuinfo()
        zones: list[_Zone] = []
        used_names: set[str] = set()
        for real, range_uj in ranges.items():
            component = _component_for(
                label=labels[real],
                parent_label=labels.get(real.parent),
                entry=entries[real],
                has_package=has_package,
                used_names=used_names,
                cpu=cpu,
            )
            if component is None:
                skipped.append(f"{real.name} ({labels[real]}, not a RAPL domain)")
                continue
            max_power_w, basis = _max_power(real, component.kind, tdp)
            used_names.add(component.name)
            zones.append(
                _Zone(
                    entry=entries[real],
                    real=real,
                    zone_id=real.name,
                    label=labels[real],
                    component=component,
                    range_uj=range_uj,
                    max_power_w=max_power_w,
                    max_power_basis=basis,
                )
            )
        if not zones:
            detail = f" (left out: {', '.join(skipped)})" if skipped else ""
            raise MeterUnavailable(f"the powercap tree at {root} has no RAPL energy zone{detail}")
        return _Discovery(zones=tuple(zones), skipped=tuple(skipped), cpu=cpu)


# -- reading -----------------------------------------------------------------------------


def _read_uj(path: Path) -> int:
    """Read a powercap counter (µJ). Raises OSError, or ValueError when empty or garbled."""
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise ValueError("read empty")
    return int(text)


def _read_zone(zone: _Zone, counter: _CounterState, now_s: float) -> Reading:
    name = zone.component.name
    try:
        value_uj = _read_uj(zone.energy_path)
    except (OSError, ValueError) as exc:
        counter.failing = True
        return Reading(name, None, note=f"{zone.entry}/energy_uj could not be read: {_why(exc)}")

    elapsed_s = now_s - counter.last_s
    if counter.last_uj is None:
        counter.rebase(value_uj, now_s)
        return Reading(
            name,
            None,
            note=(
                f"{zone.entry}/energy_uj was first read {elapsed_s:.3g} s after start: "
                "the energy before is unknown; counting starts from this read"
            ),
        )
    if elapsed_s >= zone.trusted_span_s:
        # The counter may have gone round once or more since the last good value: the
        # difference no longer says how much energy was used.
        what = "unreadable" if counter.failing else "not read"
        ceiling_w = _CEILING_FACTOR * zone.max_power_w
        counter.rebase(value_uj, now_s)
        return Reading(
            name,
            None,
            note=(
                f"{zone.entry}/energy_uj was {what} for {elapsed_s:.3g} s, not less than the "
                f"{zone.trusted_span_s:.3g} s in which it could wrap at {ceiling_w:g} W "
                f"({_CEILING_FACTOR:g} x {zone.max_power_w:g} W, {zone.max_power_basis}): "
                "the energy of that time is lost; counting resumes from this read"
            ),
        )

    delta_uj = value_uj - counter.last_uj
    if delta_uj < 0:
        # One wrap. The counter shows 0..max_energy_range_uj inclusive, so it goes round
        # in max_energy_range_uj + 1 µJ (see docs/meters-rapl.md for the residual error).
        delta_uj += zone.range_uj + 1
    since_s = counter.last_s if counter.failing else None
    counter.rebase(value_uj, now_s)
    return Reading(name, delta_uj / _UJ_PER_J, since_s=since_s)


def _same_counter(first: _Zone, second: _Zone) -> bool | None:
    """Whether two zones show one counter: ``second`` read between two reads of ``first``.

    None when it cannot be told: a file failed, or every try's two reads of ``first`` were
    more than :data:`_MIRROR_WINDOW_UJ` apart.
    """
    modulus = first.range_uj + 1
    for _ in range(_MIRROR_TRIES):
        try:
            before = _read_uj(first.energy_path)
            value = _read_uj(second.energy_path)
            after = _read_uj(first.energy_path)
        except (OSError, ValueError):
            return None
        window = (after - before) % modulus
        if window <= _MIRROR_WINDOW_UJ:
            return (value - before) % modulus <= window
    return None


def _merged(twin: Reading, other: Reading, *, first: bool) -> Reading:
    """``twin``'s reading with the energy of ``other``, a zone once taken for its mirror."""
    why = f"{other.component} advanced apart from this zone, so its energy is added here"
    if (
        twin.energy_j is None
        or other.energy_j is None
        or twin.since_s is not None
        or other.since_s is not None
    ):
        return Reading(
            twin.component,
            None,
            note=f"{why}; the two do not cover the same time: this interval's energy is unknown",
        )
    notes = [n for n in (twin.note, f"{why} from this read on" if first else None) if n]
    return Reading(twin.component, twin.energy_j + other.energy_j, note="; ".join(notes) or None)


def _with_mirrors(found: _Discovery) -> _Discovery:
    """Mark each counted zone that shows the same counter as an earlier one not counted.

    Only zones of one kind on one socket with one range are compared (die zones of one
    package, their dram zones); genuinely separate dies have counters of their own.
    """
    zones = list(found.zones)
    mirrors: list[tuple[int, int]] = []
    kept: list[int] = []
    for index, zone in enumerate(zones):
        c = zone.component
        if not c.counted:
            continue
        twin = next(
            (
                k
                for k in kept
                if (zones[k].component.kind, zones[k].component.device, zones[k].range_uj)
                == (c.kind, c.device, zone.range_uj)
                and _same_counter(zones[k], zone)
            ),
            None,
        )
        if twin is None:
            kept.append(index)
            continue
        mirrors.append((index, twin))
        detail = (
            f"{c.source.detail}; mirrors {zones[twin].component.name} (the same counter "
            "under another zone): reported, not added"
        )
        component = replace(c, counted=False, source=replace(c.source, detail=detail))
        zones[index] = replace(zone, component=component)
    return replace(found, zones=tuple(zones), mirrors=tuple(mirrors))


# -- discovery helpers -------------------------------------------------------------------


def _walk(root: Path) -> dict[Path, Path]:
    """Find every zone directory under ``root``: real path -> the path it was found by.

    Real sysfs lists each zone twice, nested in its parent and as a top-level symlink; both
    resolve to one real directory, which is kept once. The walk is breadth-first from the
    top-level zone links, so a zone is named by its short top-level path where it has one
    (``/sys/class/powercap/intel-rapl:0:2``); the control-type directories come next, for
    roots that only nest zones. Only zone-named entries (``<type>:<n>[:<n>...]``) are
    followed below the first level, so the ``subsystem`` and ``device`` links pointing back
    up the tree are never walked into.
    """
    top = sorted(root.iterdir(), key=lambda p: _order_key(p.name))
    pending = [p for p in top if _ZONE_DIR.match(p.name)]
    for control in (p for p in top if not _ZONE_DIR.match(p.name)):
        try:
            pending.extend(_zone_children(control))
        except OSError:
            continue  # a plain file, or something else that is not a control type
    found: dict[Path, Path] = {}
    seen: set[Path] = set()
    for entry in pending:  # grows while it is walked
        try:
            real = entry.resolve(strict=True)
        except (OSError, RuntimeError):  # RuntimeError: a link loop, on Python < 3.13
            continue  # a dangling link: the zone went away
        if real in seen or not real.is_dir():
            continue
        seen.add(real)
        if (real / "name").is_file() and (real / "energy_uj").exists():
            found[real] = entry
        pending.extend(_zone_children(real))
    return found


def _zone_children(directory: Path) -> list[Path]:
    children = [p for p in directory.iterdir() if _ZONE_DIR.match(p.name)]
    return sorted(children, key=lambda p: _order_key(p.name))


def _control_type(zone_id: str) -> str:
    return zone_id.split(":", 1)[0]


def _order_key(zone_id: str) -> tuple[bool, str, tuple[int, ...]]:
    """MSR zones first, then by control type, then by index numerically (2 before 10)."""
    control, _, rest = zone_id.partition(":")
    indices = tuple(int(part) for part in rest.split(":") if part.isdigit())
    return (control != _PREFERRED_CONTROL_TYPE, control, indices)


def _component_for(
    *,
    label: str,
    parent_label: str | None,
    entry: Path,
    has_package: bool,
    used_names: set[str],
    cpu: CpuIdentity,
) -> Component | None:
    source = Source(Method.MEASURED, RAPL_SENSOR, detail=str(entry))
    package = _PACKAGE_NAME.match(label)
    if package:
        kind, counted, socket, name = ComponentKind.CPU, True, package["socket"], f"cpu:{label}"
    elif label in _SUBZONE_KINDS:
        kind = _SUBZONE_KINDS[label]
        counted = kind is ComponentKind.DRAM
        parent = _PACKAGE_NAME.match(parent_label or "")
        socket = parent["socket"] if parent else None
        # cpu:dram-0 for package-0, cpu:dram-0-die-1 for package-0-die-1
        suffix = parent_label.removeprefix("package-") if parent and parent_label else None
        name = f"cpu:{label}-{suffix}" if suffix else f"cpu:{label}"
    elif label == "psys":
        kind, counted, socket, name = ComponentKind.PSYS, not has_package, None, "psys"
    else:
        return None
    unique, n = name, 1
    while unique in used_names:
        unique, n = f"{name}-{n}", n + 1
    return Component(
        name=unique,
        kind=kind,
        source=source,
        counted=counted,
        device=socket,
        relative_uncertainty=cpu.relative_uncertainty(kind),
    )


def _max_power(zone: Path, kind: ComponentKind, tdp_w: float | None) -> tuple[float, str]:
    """The highest power (W) the zone can draw for long, and where that figure comes from."""
    best_uw = 0
    try:
        candidates = [p for p in zone.iterdir() if _MAX_POWER_FILE.match(p.name)]
    except OSError:
        candidates = []
    for path in candidates:
        try:
            best_uw = max(best_uw, int(path.read_text(encoding="ascii")))
        except (OSError, ValueError):
            continue  # ENODATA is common for the short-term constraint
    if best_uw > 0:
        return best_uw / _UJ_PER_J, "from its constraint_*_max_power_uw"
    if kind is ComponentKind.PSYS:
        # The platform draws more than the CPU package: the CPU's TDP does not bound it.
        fallback = max(tdp_w or 0.0, DEFAULT_ZONE_MAX_POWER_W)
        return fallback, "assumed: psys states no maximum power"
    if tdp_w is not None:
        return tdp_w, "the cpu_tdp_w given"
    return DEFAULT_ZONE_MAX_POWER_W, "assumed: the zone states no maximum power"


# -- messages ----------------------------------------------------------------------------


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _permission_fix(root: Path, zones: Iterable[_Zone]) -> str:
    """One line naming the fix for root-only counters (Linux >= 5.10, CVE-2020-8694)."""
    patterns: set[str] = set()
    for zone in zones:
        try:
            relative = zone.entry.relative_to(root)
        except ValueError:
            relative = Path(zone.zone_id)
        parts = [
            f"{_control_type(part)}:*" if _ZONE_DIR.match(part) else part for part in relative.parts
        ]
        patterns.add(str(root.joinpath(*parts, "energy_uj")))
    return (
        f"RAPL energy counters under {root} are readable by root only (Linux >= 5.10): "
        f"run privileged, or grant read access with `sudo chmod o+r {' '.join(sorted(patterns))}`"
        " (until reboot; docs/meters-rapl.md has a udev rule to keep it)"
    )


def _none_readable(root: Path, failures: list[str]) -> str:
    return f"no RAPL energy counter under {root} could be read ({'; '.join(failures)})"


def _summary(root: Path, found: _Discovery) -> str:
    twins = {index: found.zones[twin].component.name for index, twin in found.mirrors}
    counted = [z.component.name for z in found.zones if z.component.counted]
    reported = [
        z.component.name + (f" (mirrors {twins[i]})" if i in twins else "")
        for i, z in enumerate(found.zones)
        if not z.component.counted
    ]
    text = f"RAPL zones under {root}: counted {', '.join(counted)}"
    if reported:
        text += f"; reported, not added: {', '.join(reported)}"
    if found.skipped:
        text += f"; left out: {', '.join(found.skipped)}"
    figures = {
        z.label.split("-")[0]: z.component.relative_uncertainty
        for z in found.zones
        if z.component.counted
    }
    spread = ", ".join(f"±{rel:.0%} {label}" for label, rel in figures.items())
    return f"{text}; uncertainty {spread} ({_GENERATION_LABELS[found.cpu.generation]})"
