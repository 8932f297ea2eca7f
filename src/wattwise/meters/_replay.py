"""Replay of a recorded power timeline, for tests and demos.

A trace is a list of samples (component, interval, energy) such as ``wattwise runs export
--format csv`` writes. The meter plays it back against the sampler's clock: the energy
reported between two reads is the integral of the recorded power over that span of the
trace's time, each recorded interval's power taken as constant. Recorded gaps play back
as gaps. Components keep the provenance they were recorded with; the sensor reads
``replay of <sensor>``.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wattwise._errors import DataFileError, MeterUnavailable
from wattwise.meters._base import (
    Component,
    ComponentKind,
    Meter,
    Method,
    Probe,
    Reading,
    Source,
)

__all__ = ["ReplayMeter", "TraceInterval"]

#: Columns a trace CSV must have (``wattwise runs export --format csv`` writes them).
TRACE_COLUMNS = (
    "component",
    "kind",
    "method",
    "sensor",
    "counted",
    "t_start_s",
    "t_end_s",
    "energy_j",
)


@dataclass(frozen=True)
class TraceInterval:
    """One recorded interval of one component.

    Attributes:
        component: component name.
        t_start_s: interval start, s from the trace's start.
        t_end_s: interval end, s from the trace's start.
        energy_j: energy over the interval in J, or None for a recorded gap.
    """

    component: str
    t_start_s: float
    t_end_s: float
    energy_j: float | None


class _Track:
    """One component's intervals, sorted and non-overlapping, with cumulative energy."""

    def __init__(self, intervals: list[TraceInterval]) -> None:
        intervals = sorted(intervals, key=lambda i: i.t_start_s)
        self.starts = [i.t_start_s for i in intervals]
        self.intervals = intervals
        self.end_s = max(i.t_end_s for i in intervals)

    def energy_between(self, a: float, b: float) -> float | None:
        """Recorded energy in [a, b] in J, or None when a recorded gap overlaps it."""
        total = 0.0
        k = max(0, bisect.bisect_right(self.starts, a) - 1)
        for iv in self.intervals[k:]:
            if iv.t_start_s >= b:
                break
            lo, hi = max(a, iv.t_start_s), min(b, iv.t_end_s)
            if hi <= lo:
                continue
            if iv.energy_j is None:
                return None
            total += iv.energy_j * (hi - lo) / (iv.t_end_s - iv.t_start_s)
        return total


class ReplayMeter(Meter):
    """Plays a recorded trace back as if its sensors were live.

    Args:
        components: the recorded components (provenance kept).
        intervals: the recorded intervals.
        loop: start the trace again when it ends (for demos); otherwise the meter reports
            zero power after the end of the trace.
        speed: trace seconds per second of the sampler's clock (2.0 plays twice as fast).
    """

    name = "replay"

    def __init__(
        self,
        components: Sequence[Component],
        intervals: Sequence[TraceInterval],
        *,
        loop: bool = False,
        speed: float = 1.0,
    ) -> None:
        self.components = list(components)
        self.intervals = list(intervals)
        self.loop = loop
        self.speed = speed
        self._t0: float | None = None
        self._last: float = 0.0

    @classmethod
    def from_csv(cls, path: str | Path, *, loop: bool = False, speed: float = 1.0) -> ReplayMeter:
        """Load a trace CSV (``wattwise runs export ID --format csv``).

        Raises:
            DataFileError: the file is missing or a line cannot be parsed (names the line).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataFileError(f"cannot read trace {path}: {exc.strerror}") from exc
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in TRACE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFileError(f"{path}:1: trace lacks column(s) {', '.join(missing)}")
        components: dict[str, Component] = {}
        intervals: list[TraceInterval] = []
        for line_no, row in enumerate(reader, start=2):
            try:
                name = row["component"]
                if name not in components:
                    components[name] = Component(
                        name=name,
                        kind=ComponentKind(row["kind"]),
                        source=Source(
                            Method(row["method"]), f"replay of {row['sensor']}", str(path)
                        ),
                        counted=row["counted"].strip().lower() in ("1", "true", "yes"),
                        relative_uncertainty=float(row.get("relative_uncertainty") or 0.0),
                    )
                energy = row["energy_j"].strip()
                start, end = float(row["t_start_s"]), float(row["t_end_s"])
                if end <= start:
                    raise ValueError("t_end_s must be after t_start_s")
                intervals.append(TraceInterval(name, start, end, float(energy) if energy else None))
            except (ValueError, KeyError, AttributeError) as exc:
                raise DataFileError(f"{path}:{line_no}: {exc}") from exc
        if not intervals:
            raise DataFileError(f"{path}: the trace has no samples")
        return cls(list(components.values()), intervals, loop=loop, speed=speed)

    def probe(self) -> Probe:
        names = tuple(c.name for c in self.components)
        if not self.intervals:
            return Probe(self.name, False, "the trace is empty", names)
        return Probe(self.name, True, f"replaying {len(self.intervals)} recorded samples", names)

    def start(self, now_s: float) -> list[Component]:
        if not self.intervals:
            raise MeterUnavailable("the trace to replay is empty")
        by_comp: dict[str, list[TraceInterval]] = {}
        for iv in self.intervals:
            by_comp.setdefault(iv.component, []).append(iv)
        unknown = set(by_comp) - {c.name for c in self.components}
        if unknown:
            raise MeterUnavailable(f"trace intervals for undeclared components: {sorted(unknown)}")
        self._tracks = {name: _Track(ivs) for name, ivs in by_comp.items()}
        self._length = max(t.end_s for t in self._tracks.values())
        self._t0 = now_s
        self._last = 0.0
        return list(self.components)

    def _energy(self, track: _Track, a: float, b: float) -> float | None:
        if not self.loop:
            return track.energy_between(min(a, self._length), min(b, self._length))
        total = 0.0
        while b > a:
            cycle, off = divmod(a, self._length)
            seg_end = min(b, (cycle + 1) * self._length)
            part = track.energy_between(off, off + (seg_end - a))
            if part is None:
                return None
            total += part
            a = seg_end
        return total

    def read(self, now_s: float) -> list[Reading]:
        assert self._t0 is not None, "start() first"
        t = (now_s - self._t0) * self.speed
        a, self._last = self._last, t
        out = []
        for c in self.components:
            track = self._tracks.get(c.name)
            energy = self._energy(track, a, t) if track is not None else 0.0
            out.append(Reading(c.name, energy, None if energy is not None else "recorded gap"))
        return out
