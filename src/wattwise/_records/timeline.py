"""One point of a downsampled power timeline: consecutive samples of a component merged.

The tracker keeps a bounded timeline of a long run (``tracking/_timeline.py``) and the store
downsamples a stored one in SQL (``store/_rows.py``); both build their merged points here,
so they read the same. A merged point's energy is the exact sum of the known energies it
covers, so the sum of a timeline's energies is the run's whatever its resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

from wattwise._records.run import Sample

__all__ = ["downsample", "merged_sample"]


def merged_sample(
    component: str,
    t_start_s: float,
    t_end_s: float,
    energy_j: float | None,
    gap_s: float,
    *,
    gap_note: str | None = None,
) -> Sample:
    """The point covering ``[t_start_s, t_end_s]`` of a component, from merged samples.

    Args:
        component: the component's name.
        t_start_s: start of the first merged sample, s since the run started.
        t_end_s: end of the last one.
        energy_j: the sum of their known energies, in J; None when every one was a gap.
        gap_s: seconds of gap samples among them.
        gap_note: the note of a gap (used when all of them were gaps).

    A point that merges known and unreadable time says so in its note: its energy is that
    of the known part only (its mean power is then a lower bound, never a guess).
    """
    if energy_j is None:
        return Sample(component, t_start_s, t_end_s, None, gap_note or "unreadable")
    note = None
    if gap_s > 0:
        note = f"{gap_s:.3g} s of {t_end_s - t_start_s:.3g} s unreadable: energy of the rest"
    return Sample(component, t_start_s, t_end_s, energy_j, note)


def downsample(samples: Sequence[Sample], most: int) -> list[Sample]:
    """At most about ``most`` points per component: each component's samples, in time
    order, merged in equal groups of consecutive ones (:func:`merged_sample`), so every
    point's energy is the exact sum of its group's. Fewer samples are returned as they are.
    """
    by_component: dict[str, list[Sample]] = {}
    for s in samples:
        by_component.setdefault(s.component, []).append(s)
    out: list[Sample] = []
    for component, points in by_component.items():
        points.sort(key=lambda s: (s.t_start_s, s.t_end_s))
        size = max(1, -(-len(points) // max(most, 1)))
        if size == 1:
            out.extend(points)
            continue
        for k in range(0, len(points), size):
            group = points[k : k + size]
            known = [s.energy_j for s in group if s.energy_j is not None]
            gap_s = sum(s.t_end_s - s.t_start_s for s in group if s.energy_j is None)
            notes = [s.note for s in group if s.energy_j is None and s.note]
            out.append(
                merged_sample(
                    component,
                    group[0].t_start_s,
                    max(s.t_end_s for s in group),
                    sum(known) if known else None,
                    gap_s,
                    gap_note=notes[0] if notes else None,
                )
            )
    return out
