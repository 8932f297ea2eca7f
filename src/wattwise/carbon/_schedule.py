"""Carbon-aware scheduling: when (and where) to run a job of known length before a deadline.

Emissions of running at power P over a set of intervals T are P · ∫_T I(t) dt, with I the
grid intensity trace (a step function). Without a power or energy figure the integral
itself is minimised and reported in relative units, (gCO2e/kWh) × h.

* **Contiguous**: the start s in [start, deadline − duration] minimising ∫_s^{s+d} I dt.
  That integral is piecewise linear in s with kinks only where s or s + d crosses a trace
  step, so its minimum is at one of those O(n) candidate starts or at an end of the
  range. All are evaluated at once from the cumulative integral: O(n) time and memory for
  n trace steps in the window, and the optimum is exact, not limited to a grid.
* **Interruptible**: the job runs in whole trace slots (the trace's step; ``step`` of
  :meth:`IntensityTrace.resample` for another one) inside the window. Without a minimum
  chunk the optimum is the k cheapest slots (exact; O(n log n)). With a minimum chunk of
  m slots every maximal run of chosen slots must be at least m long; a dynamic programme
  over (slot, slots used) with two states (outside a run / inside a run already m long)
  finds the exact optimum in O(n·k) time and memory.

The baseline is running at once: contiguous, from ``start``. An interruptible plan that
cannot beat it (possible only when ``start`` falls inside a slot) is replaced by it.

Gaps (trace steps without data, see :class:`IntensityTrace`) are never guessed: no
candidate start or slot that overlaps one is chosen, each plan lists the gaps of its
window, and a baseline that would run through a gap is an error (its emissions are
unknown, so no saving can be claimed).

Why one module of ~620 lines: the two planners (contiguous and interruptible), their
input parsing and the result they fill share the window, cost and gap checks below; split
apart, each would need all of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np
import numpy.typing as npt

from wattwise._errors import ConfigError
from wattwise.carbon._emissions import J_PER_KWH
from wattwise.carbon._trace import IntensityTrace, parse_timezone

__all__ = [
    "UNITS_GRAMS",
    "UNITS_RELATIVE",
    "Plan",
    "ScheduleResult",
    "parse_duration",
    "parse_instant",
    "plan_contiguous",
    "plan_interruptible",
    "schedule_job",
]

UNITS_GRAMS = "gCO2e"
UNITS_RELATIVE = "relative (gCO2e/kWh × h)"

#: Largest slots × (slots needed + 1) the min-chunk programme accepts (memory bound).
DP_LIMIT = 4_000_000

_DURATION_TOKEN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(d|h|min|m|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}
_TIE = 1e-9  # relative tolerance under which two costs count as equal (earliest wins)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Plan:
    """The best way to run the job in one zone.

    Attributes:
        zone: zone of the trace.
        start: when the job starts (UTC).
        end: when its last slot ends (UTC).
        slots: the (start, end) intervals it runs in (one for a contiguous plan).
        emissions: emissions of the plan, in ``units``.
        baseline_emissions: emissions of starting at the window's start, in ``units``.
        units: ``gCO2e``, or relative units when no power or energy was given.
        gaps: the stretches of the window without data in the trace (UTC); no slot
            overlaps them.
    """

    zone: str
    start: datetime
    end: datetime
    slots: tuple[tuple[datetime, datetime], ...]
    emissions: float
    baseline_emissions: float
    units: str
    gaps: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def saving_ratio(self) -> float:
        """1 − emissions / baseline (0 when the baseline is 0)."""
        if self.baseline_emissions <= 0:
            return 0.0
        return 1.0 - self.emissions / self.baseline_emissions

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "zone": self.zone,
            "best_start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "emissions_g": self.emissions,
            "baseline_emissions_g": self.baseline_emissions,
            "saving_ratio": self.saving_ratio,
            "slots": [[a.isoformat(), b.isoformat()] for a, b in self.slots],
            "units": self.units,
            "gaps": [[a.isoformat(), b.isoformat()] for a, b in self.gaps],
        }


@dataclass(frozen=True)
class ScheduleResult:
    """The best zone and time, each zone's best, and the baseline.

    Attributes:
        best: the plan with the lowest emissions over all zones (the first on a tie).
        plans: each zone's best plan, in the order the traces were given.
        window_start: earliest start (UTC).
        deadline: latest end (UTC).
        duration_s: the job's length, in s.
        interruptible: whether the job may be split into slots.
        min_chunk_s: shortest allowed run of slots, in s, or None.
        units: units of every emissions figure.
    """

    best: Plan
    plans: tuple[Plan, ...]
    window_start: datetime
    deadline: datetime
    duration_s: float
    interruptible: bool
    min_chunk_s: float | None
    units: str

    @property
    def baseline(self) -> Plan:
        """The first zone's plan: its baseline is the job started at once where it is."""
        return self.plans[0]

    @property
    def saving_ratio(self) -> float:
        """1 − best emissions / baseline emissions (of the first zone)."""
        base = self.baseline.baseline_emissions
        return 0.0 if base <= 0 else 1.0 - self.best.emissions / base

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``wattwise schedule --json``."""
        return {
            "zone": self.best.zone,
            "best_start": self.best.start.isoformat(),
            "end": self.best.end.isoformat(),
            "emissions_g": self.best.emissions,
            "baseline_zone": self.baseline.zone,
            "baseline_start": self.window_start.isoformat(),
            "baseline_emissions_g": self.baseline.baseline_emissions,
            "saving_ratio": self.saving_ratio,
            "slots": [[a.isoformat(), b.isoformat()] for a, b in self.best.slots],
            "units": self.units,
            "mode": "interruptible" if self.interruptible else "contiguous",
            "duration_s": self.duration_s,
            "min_chunk_s": self.min_chunk_s,
            "window_start": self.window_start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "zones": [p.to_dict() for p in self.plans],
            "gaps": [
                {"zone": p.zone, "start": a.isoformat(), "end": b.isoformat()}
                for p in self.plans
                for a, b in p.gaps
            ],
        }


#: Largest mean power of a job :func:`schedule_job` accepts, in W (1 GW, a whole campus).
MAX_JOB_POWER_W = 1e9

#: Longest duration :func:`parse_duration` accepts by default: 366 days, in s.
MAX_DURATION_S = 366 * 86400.0


def _format_s(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def parse_duration(
    text: str, *, min_s: float = 0.0, max_s: float = MAX_DURATION_S, what: str | None = None
) -> float:
    """Seconds in a duration such as ``4h``, ``30m``, ``1h30m``, ``90s``, ``1.5h``, ``2d``.

    Args:
        text: the duration.
        min_s: it must be longer than this, in s (default: any positive duration).
        max_s: and at most this, in s (default 366 days).
        what: what the duration is for, named in the message (e.g. ``--baseline``).

    Raises:
        ConfigError: not a duration with units, or outside (min_s, max_s].
    """
    compact = text.strip()
    pos = 0
    total = 0.0
    matched = False
    for match in _DURATION_TOKEN.finditer(compact):
        if compact[pos : match.start()].strip():
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2).lower()]
        pos = match.end()
        matched = True
    label = f" for {what}" if what else ""
    if not matched or compact[pos:].strip():
        raise ConfigError(
            f"bad duration {text!r}{label}: use a number with a unit, e.g. 4h, 30m, 1h30m, 90s, 2d"
        )
    if not min_s < total <= max_s:
        low = "0 s" if min_s <= 0 else _format_s(min_s)
        raise ConfigError(
            f"duration {text!r}{label} is out of range: it must be longer than {low} "
            f"and at most {_format_s(max_s)}"
        )
    return total


def parse_instant(text: str, tz: str | tzinfo | None = None) -> datetime:
    """An aware UTC instant from ISO 8601 text (or ``now``); naive text is in ``tz``/UTC.

    Raises:
        ConfigError: not ISO 8601, unknown time zone, or a local time in a DST gap.
    """
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"bad time {text!r}: use ISO 8601, e.g. 2020-06-01T08:00 or 2020-06-01T08:00+02:00"
        ) from None
    if when.tzinfo is None:
        zone = parse_timezone(tz) if isinstance(tz, str) else tz
        if zone is None:
            return when.replace(tzinfo=UTC)
        local = when.replace(tzinfo=zone)
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != when:
            raise ConfigError(f"local time {text!r} does not exist in {zone} (DST gap)")
        when = local
    return when.astimezone(UTC)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _utc(t_s: float) -> datetime:
    return datetime.fromtimestamp(round(t_s, 6), UTC)


def _scale(power_w: float | None, energy_j: float | None, duration_s: float) -> tuple[float, str]:
    """Factor turning ∫ I dt in (gCO2e/kWh)·s into the reported units, and the units."""
    if power_w is not None and energy_j is not None:
        raise ConfigError("give a power or an energy, not both")
    if energy_j is not None:
        if not energy_j > 0 or not math.isfinite(energy_j):
            raise ConfigError(f"energy {energy_j!r} J must be a positive number")
        if energy_j / duration_s > MAX_JOB_POWER_W:
            raise ConfigError(
                f"energy {energy_j:g} J in {_format_s(duration_s)} is a mean power of "
                f"{energy_j / duration_s:.3g} W, more than {MAX_JOB_POWER_W:g} W (1 GW): "
                "the energy is in J"
            )
        power_w = energy_j / duration_s
    if power_w is not None:
        if not 0 < power_w <= MAX_JOB_POWER_W:
            raise ConfigError(
                f"power {power_w!r} W is out of range: a job's mean power must be more than "
                f"0 W and at most {MAX_JOB_POWER_W:g} W (1 GW)"
            )
        return power_w / J_PER_KWH, UNITS_GRAMS
    return 1.0 / 3600.0, UNITS_RELATIVE


def _window(
    trace: IntensityTrace, start: datetime, deadline: datetime, duration_s: float
) -> tuple[float, float]:
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise ConfigError(f"duration {duration_s!r} s must be a positive number")
    begin, end = _aware(start), _aware(deadline)
    if (end - begin).total_seconds() < duration_s - 1e-6:
        hours = duration_s / 3600
        raise ConfigError(
            f"deadline {end.isoformat(timespec='minutes')} is before start "
            f"{begin.isoformat(timespec='minutes')} + duration "
            f"{hours:g} h: nothing fits"
        )
    s, d = begin.timestamp(), end.timestamp()
    if not trace.covers(s, d):
        raise ConfigError(
            f"trace {trace.zone} ({trace.source}) covers {trace.start.isoformat()} to "
            f"{trace.end.isoformat()}; the window {begin.isoformat()} to {end.isoformat()} "
            "is not inside it"
        )
    return s, d


def _cost(trace: IntensityTrace, starts: FloatArray, duration_s: float) -> FloatArray:
    return trace.integral(starts + duration_s) - trace.integral(starts)


#: Seconds of missing data under which a window counts as fully covered (float noise).
_GAP_TOLERANCE_S = 1e-3


def _gap_list(gaps: Sequence[tuple[float, float]], limit: int = 3) -> str:
    """``2020-06-01T03:00+00:00 to 06:00 (3 h)``, for the first few gaps."""
    parts = []
    for a, b in gaps[:limit]:
        start, end = _utc(a), _utc(b)
        tail = end.strftime("%H:%M") if start.date() == end.date() else end.isoformat()
        parts.append(f"{start.isoformat()} to {tail} ({_format_s(b - a)})")
    more = f" and {len(gaps) - limit} more" if len(gaps) > limit else ""
    return "; ".join(parts) + more


def _window_gaps(
    trace: IntensityTrace, s: float, d: float
) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((_utc(a), _utc(b)) for a, b in trace.gaps_between(s, d))


def _check_baseline(trace: IntensityTrace, s: float, duration_s: float) -> None:
    """The baseline (start at once) must not run through a gap: its emissions are unknown."""
    end = s + duration_s
    gaps = [(a, b) for a, b in trace.gaps_s if a < end and b > s]
    if gaps:
        after = _utc(gaps[-1][1]).strftime("%Y-%m-%dT%H:%M+00:00")
        raise ConfigError(
            f"trace {trace.zone} ({trace.source}) has no data for {_gap_list(gaps)}, which "
            f"the baseline (starting at once, {_utc(s).isoformat()}) would run through, so no "
            f"saving can be computed: start after the gap (--start {after}) or fill the trace"
        )


def _earliest_min(costs: FloatArray, times: FloatArray) -> int:
    """Index of the lowest cost, the earliest time among (near-)ties."""
    low = float(costs.min())
    tolerance = _TIE * max(abs(low), float(np.abs(costs).max()), 1e-300)
    tied = np.flatnonzero(costs <= low + tolerance)
    return int(tied[np.argmin(times[tied])])


def plan_contiguous(
    trace: IntensityTrace,
    *,
    start: datetime,
    deadline: datetime,
    duration_s: float,
    power_w: float | None = None,
    energy_j: float | None = None,
) -> Plan:
    """The start in [start, deadline − duration] with the lowest emissions (exact).

    Args:
        trace: intensity trace covering [start, deadline].
        start: earliest start (naive: UTC).
        deadline: latest end (naive: UTC).
        duration_s: the job's length, in s.
        power_w: the job's mean power, in W (emissions in gCO2e), or
        energy_j: the job's energy, in J; neither: relative units.

    Raises:
        ConfigError: deadline before start + duration, window not covered, bad figures.
    """
    factor, units = _scale(power_w, energy_j, duration_s)
    s, d = _window(trace, start, deadline, duration_s)
    latest = max(s, d - duration_s)
    edges = trace.edges_s
    inner = edges[np.searchsorted(edges, s, "left") : np.searchsorted(edges, latest, "right")]
    lo = np.searchsorted(edges, s + duration_s, "left")
    hi = np.searchsorted(edges, d, "right")
    shifted = edges[lo:hi] - duration_s
    candidates = np.concatenate(([s], inner, shifted, [latest]))
    candidates = np.clip(candidates, s, latest)
    _check_baseline(trace, s, duration_s)  # so the start s itself is always a candidate
    free = trace.missing_s(candidates, candidates + duration_s) <= _GAP_TOLERANCE_S
    candidates = candidates[free]
    costs = _cost(trace, candidates, duration_s)
    best = candidates[_earliest_min(costs, candidates)]
    baseline = float(_cost(trace, np.asarray([s]), duration_s)[0])
    chosen = float(_cost(trace, np.asarray([best]), duration_s)[0])
    begin, finish = _utc(float(best)), _utc(float(best) + duration_s)
    return Plan(
        zone=trace.zone,
        start=begin,
        end=finish,
        slots=((begin, finish),),
        emissions=chosen * factor,
        baseline_emissions=baseline * factor,
        units=units,
        gaps=_window_gaps(trace, s, d),
    )


def _cheapest(costs: FloatArray, k: int) -> BoolArray:
    order = np.lexsort((np.arange(costs.size), costs))[:k]
    mask = np.zeros(costs.size, dtype=np.bool_)
    mask[order] = True
    return mask


def _min_chunk(costs: FloatArray, k: int, m: int) -> BoolArray:
    """Exactly k slots, every maximal run at least m long, minimum total cost: O(n·k).

    ``outside[i, j]``: best cost over slots < i with j chosen, slot i−1 not chosen.
    ``inside[i, j]``: same with slot i−1 chosen, its run already at least m long.
    """
    n = costs.size
    if n * (k + 1) > DP_LIMIT:
        raise ConfigError(
            f"the min-chunk search over {n} slots for {k} slots is too large "
            f"({n * (k + 1)} states, limit {DP_LIMIT}); resample to a coarser step"
        )
    blocked = ~np.isfinite(costs)
    prefix = np.concatenate(([0.0], np.cumsum(np.where(blocked, 0.0, costs))))
    blocked_prefix = np.concatenate(([0], np.cumsum(blocked)))
    outside = np.full((n + 1, k + 1), np.inf)
    inside = np.full((n + 1, k + 1), np.inf)
    outside[0, 0] = 0.0
    came_from_inside = np.zeros((n + 1, k + 1), dtype=np.bool_)
    extended = np.zeros((n + 1, k + 1), dtype=np.bool_)
    extend = np.full(k + 1, np.inf)
    opened = np.full(k + 1, np.inf)
    for i in range(1, n + 1):
        came_from_inside[i] = inside[i - 1] < outside[i - 1]
        outside[i] = np.minimum(outside[i - 1], inside[i - 1])
        extend[0] = np.inf
        extend[1:] = inside[i - 1, :-1] + costs[i - 1]
        opened.fill(np.inf)
        if i >= m and blocked_prefix[i] == blocked_prefix[i - m]:
            opened[m:] = outside[i - m, : k + 1 - m] + (prefix[i] - prefix[i - m])
        extended[i] = extend <= opened
        inside[i] = np.minimum(extend, opened)
    if not math.isfinite(min(outside[n, k], inside[n, k])):
        free = int(n - blocked_prefix[n])
        raise ConfigError(
            f"no way to place {k} slots in runs of at least {m} in the window's {n} slots"
            + (f" ({free} of them with data)" if free < n else "")
        )
    mask = np.zeros(n, dtype=np.bool_)
    i, j = n, k
    in_run = inside[n, k] < outside[n, k]
    while i > 0:
        if not in_run:
            in_run = bool(came_from_inside[i, j])
            i -= 1
        elif extended[i, j]:
            mask[i - 1] = True
            i, j = i - 1, j - 1
        else:
            mask[i - m : i] = True
            i, j, in_run = i - m, j - m, False
    return mask


def _runs(mask: BoolArray) -> list[tuple[int, int]]:
    """(first, last + 1) index pairs of the runs of True."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(changes[::2], changes[1::2], strict=True)]


def plan_interruptible(
    trace: IntensityTrace,
    *,
    start: datetime,
    deadline: datetime,
    duration_s: float,
    min_chunk_s: float | None = None,
    power_w: float | None = None,
    energy_j: float | None = None,
) -> Plan:
    """The set of whole trace slots in [start, deadline] with the lowest emissions (exact).

    Args:
        trace: intensity trace covering [start, deadline]; its step is the slot length
            (an irregular trace is resampled to its median step first).
        start: earliest start (naive: UTC).
        deadline: latest end (naive: UTC).
        duration_s: the job's length, in s: a whole number of slots.
        min_chunk_s: shortest run of consecutive slots, in s (rounded up to whole slots;
            a job shorter than it runs in one piece), or None.
        power_w: the job's mean power, in W, or
        energy_j: the job's energy, in J; neither: relative units.

    Raises:
        ConfigError: deadline before start + duration, window not covered, duration not
            a whole number of slots, too few whole slots in the window, bad figures.
    """
    factor, units = _scale(power_w, energy_j, duration_s)
    s, d = _window(trace, start, deadline, duration_s)
    grid = trace.regular()
    step = grid.step_s
    slots_needed = duration_s / step
    k = round(slots_needed)
    if abs(slots_needed - k) > 1e-6 or k < 1:
        raise ConfigError(
            f"duration {duration_s:g} s is not a whole number of the trace's {step:g} s slots; "
            "resample the trace (--step) or change the duration"
        )
    m = 1
    if min_chunk_s is not None:
        if not min_chunk_s > 0 or not math.isfinite(min_chunk_s):
            raise ConfigError(f"min chunk {min_chunk_s!r} s must be a positive number")
        m = min(k, math.ceil(min_chunk_s / step - 1e-9))
    t0 = float(grid.times_s[0])
    first = max(0, math.ceil((s - t0) / step - 1e-9))
    stop = min(grid.times_s.size, math.floor((d - t0) / step + 1e-9))
    n = stop - first
    if n < k:
        raise ConfigError(
            f"the window holds {max(n, 0)} whole {step:g} s slots of trace {trace.zone}; "
            f"the job needs {k}"
        )
    _check_baseline(trace, s, duration_s)
    values = grid.values_g_per_kwh[first:stop]
    costs = np.where(np.isnan(values), np.inf, values * step)
    free = int(np.count_nonzero(np.isfinite(costs)))
    if free < k:
        raise ConfigError(
            f"the window holds {free} whole {step:g} s slots with data in trace {trace.zone} "
            f"(no data for {_gap_list(grid.gaps_between(s, d))}); the job needs {k}"
        )
    mask = _cheapest(costs, k) if m <= 1 else _min_chunk(costs, k, m)
    emissions = float(costs[mask].sum()) * factor
    baseline = float(_cost(trace, np.asarray([s]), duration_s)[0]) * factor
    if emissions > baseline:
        begin, finish = _utc(s), _utc(s + duration_s)
        slots: tuple[tuple[datetime, datetime], ...] = ((begin, finish),)
        emissions = baseline
    else:
        slots = tuple(
            (_utc(t0 + (first + a) * step), _utc(t0 + (first + b) * step)) for a, b in _runs(mask)
        )
    return Plan(
        zone=trace.zone,
        start=slots[0][0],
        end=slots[-1][1],
        slots=slots,
        emissions=emissions,
        baseline_emissions=baseline,
        units=units,
        gaps=_window_gaps(grid, s, d),
    )


def schedule_job(
    traces: Sequence[IntensityTrace],
    *,
    start: datetime,
    deadline: datetime,
    duration_s: float,
    interruptible: bool = False,
    min_chunk_s: float | None = None,
    power_w: float | None = None,
    energy_j: float | None = None,
) -> ScheduleResult:
    """The best zone and time for a job over one or more traces, and each zone's best.

    The baseline is the job started at ``start`` in the first trace's zone (where it
    would run without carbon awareness).

    Raises:
        ConfigError: no trace, or any error of :func:`plan_contiguous` /
            :func:`plan_interruptible` (naming the zone).
    """
    if not traces:
        raise ConfigError("give at least one intensity trace")
    if min_chunk_s is not None and not interruptible:
        raise ConfigError("a minimum chunk only applies to an interruptible job")
    plans: list[Plan] = []
    for trace in traces:
        if interruptible:
            plan = plan_interruptible(
                trace,
                start=start,
                deadline=deadline,
                duration_s=duration_s,
                min_chunk_s=min_chunk_s,
                power_w=power_w,
                energy_j=energy_j,
            )
        else:
            plan = plan_contiguous(
                trace,
                start=start,
                deadline=deadline,
                duration_s=duration_s,
                power_w=power_w,
                energy_j=energy_j,
            )
        plans.append(plan)
    best = plans[0]
    for plan in plans[1:]:
        if plan.emissions < best.emissions * (1 - _TIE):
            best = plan
    return ScheduleResult(
        best=best,
        plans=tuple(plans),
        window_start=_aware(start),
        deadline=_aware(deadline),
        duration_s=duration_s,
        interruptible=interruptible,
        min_chunk_s=min_chunk_s,
        units=plans[0].units,
    )
