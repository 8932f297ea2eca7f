"""One point of a downsampled power timeline: consecutive samples of a component merged.

The tracker keeps a bounded timeline of a long run (``tracking/_timeline.py``) and the store
downsamples a stored one in SQL (``store/_rows.py``); both build their merged points here,
so they read the same. A merged point's energy is the exact sum of the known energies it
covers, so the sum of a timeline's energies is the run's whatever its resolution.
"""

from __future__ import annotations

from wattwise._records.run import Sample

__all__ = ["merged_sample"]


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
