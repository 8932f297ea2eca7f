"""A bounded power timeline: what a tracker keeps of a run's samples, however long it runs.

Every sample goes to the store as it is taken (the flusher); the tracker itself keeps, per
component, at most ``max_points`` points. While a component has fewer samples, they are kept
as they are (a short run's timeline is exact); when it reaches the bound, neighbouring points
are merged two by two and each later point merges twice as many samples, so memory stays
constant in the run's length and the points stay evenly spread over it. A merged point's
energy is the exact sum of its samples' known energies (:func:`merged_sample`), so the
timeline's total is the run's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wattwise._records import Sample
from wattwise._records.timeline import merged_sample

__all__ = ["DEFAULT_TIMELINE_POINTS", "Timeline"]

#: Points kept per component: at 1 Hz a run's first ~34 minutes are kept sample by sample;
#: a week is then kept as ~5-minute points (11 components: ~22,000 points, a few MB).
DEFAULT_TIMELINE_POINTS = 2048


@dataclass(slots=True)
class _Point:
    t_start_s: float
    t_end_s: float
    energy_j: float | None
    gap_s: float
    sample: Sample | None  # the sample itself while points are not merged
    count: int = 1

    @classmethod
    def of(cls, s: Sample) -> _Point:
        gap = s.t_end_s - s.t_start_s if s.energy_j is None else 0.0
        return cls(s.t_start_s, s.t_end_s, s.energy_j, gap, s)

    def absorb(self, other: _Point) -> None:
        self.t_start_s = min(self.t_start_s, other.t_start_s)
        self.t_end_s = max(self.t_end_s, other.t_end_s)
        if other.energy_j is not None:
            self.energy_j = other.energy_j + (self.energy_j or 0.0)
        self.gap_s += other.gap_s
        if self.energy_j is not None:
            self.sample = None
        elif self.sample is None:  # all gaps so far: keep one gap's sample for its note
            self.sample = other.sample
        self.count += other.count

    def to_sample(self, component: str) -> Sample:
        if self.count == 1 and self.sample is not None:
            return self.sample
        note = self.sample.note if self.sample is not None else None
        return merged_sample(
            component, self.t_start_s, self.t_end_s, self.energy_j, self.gap_s, gap_note=note
        )


class _Track:
    """One component's points and how many samples each new point takes."""

    __slots__ = ("per_point", "points")

    def __init__(self) -> None:
        self.points: list[_Point] = []
        self.per_point = 1

    def add(self, sample: Sample, max_points: int) -> None:
        last = self.points[-1] if self.points else None
        if last is not None and last.count < self.per_point:
            last.absorb(_Point.of(sample))
            return
        if len(self.points) >= max_points:
            self._halve()
            self.add(sample, max_points)
            return
        self.points.append(_Point.of(sample))

    def _halve(self) -> None:
        merged = []
        for i in range(0, len(self.points) - 1, 2):
            first = self.points[i]
            first.absorb(self.points[i + 1])
            merged.append(first)
        if len(self.points) % 2:
            merged.append(self.points[-1])
        self.points = merged
        self.per_point *= 2


class Timeline:
    """A run's timeline, at most ``max_points`` points per component.

    Args:
        components: the component names, in the order their samples are taken at each read.
        max_points: the bound per component (at least 2).
    """

    def __init__(self, components: Sequence[str], max_points: int = DEFAULT_TIMELINE_POINTS):
        if max_points < 2:
            raise ValueError(f"a timeline needs at least 2 points per component, got {max_points}")
        self.max_points = max_points
        self._order = {name: i for i, name in enumerate(components)}
        self._tracks: dict[str, _Track] = {}

    def add(self, sample: Sample) -> None:
        """Add the next sample of its component."""
        track = self._tracks.get(sample.component)
        if track is None:
            track = self._tracks[sample.component] = _Track()
            self._order.setdefault(sample.component, len(self._order))
        track.add(sample, self.max_points)

    def __len__(self) -> int:
        return sum(len(t.points) for t in self._tracks.values())

    def samples(self) -> tuple[Sample, ...]:
        """The points as samples, in the order they were taken (by end, then component)."""
        out = [
            (p.t_end_s, self._order[name], p.to_sample(name))
            for name, track in self._tracks.items()
            for p in track.points
        ]
        out.sort(key=lambda x: (x[0], x[1]))
        return tuple(s for _, _, s in out)
