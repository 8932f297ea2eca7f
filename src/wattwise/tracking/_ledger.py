"""What a run has measured so far: readings accounted into samples, gaps, the run's and each
open window's accumulators, and the frozen :class:`RunResult` built from them at the end.

The tracker reads the meters and hands the readings here with the scope's shares; the
ledger knows nothing of threads, meters or the store. It is not thread-safe: the tracker
calls it holding its lock. Times are the tracker clock's monotonic seconds; the records
hold them as seconds from the run's start (``t0``).

Its memory is constant in the run's length: the samples not yet handed to the store
(``pending_samples``, only when there is a store), running accumulators, and a bounded,
downsampled :class:`~wattwise.tracking._timeline.Timeline` for the result and live view.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from wattwise._records import (
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
    counted_totals,
    host_identity,
    net_uncertainty,
)
from wattwise.meters._base import Component, ComponentKind, Reading
from wattwise.tracking._accumulate import share_after
from wattwise.tracking._timeline import DEFAULT_TIMELINE_POINTS, Timeline
from wattwise.tracking._window import _OpenWindow

__all__ = ["RunLedger"]


class RunLedger:
    """The accounts of one run from its start read at ``t0``.

    Args:
        name: the run's name (its root window's).
        components: every component of the started meters.
        t0: the clock time of the run's start read, in s.
        pending: keep the samples for the store until :meth:`take_pending` takes them
            (False when there is no store: nothing would ever take them).
        timeline_points: the bound of the kept timeline, points per component.
    """

    def __init__(
        self,
        name: str,
        components: Sequence[Component],
        t0: float,
        *,
        pending: bool = True,
        timeline_points: int = DEFAULT_TIMELINE_POINTS,
    ) -> None:
        self.components = list(components)
        self.by_name = {c.name: c for c in self.components}
        self.t0 = t0
        self.last_read = {c.name: t0 for c in self.components}
        self.last_tick = t0
        self.root = _OpenWindow(name, "", 0.0)
        self.exposure_s: dict[str, float] = {c.name: 0.0 for c in self.components}
        self.open_windows: list[_OpenWindow] = []
        self.closed_windows: list[WindowResult] = []
        self.open_gaps: dict[str, tuple[float, str]] = {}
        self.gaps: list[Gap] = []
        self.timeline = Timeline([c.name for c in self.components], timeline_points)
        self.keeps_pending = pending
        self.pending_samples: list[Sample] = []
        self.pending_gaps: list[Gap] = []
        self.pending_windows: list[WindowResult] = []
        #: Each component's power over its last reading, in W (None: in a gap); the live view.
        self.last_power_w: dict[str, float | None] = {}

    # ------------------------------------------------------------------- readings
    def start_read(self, readings: Sequence[Reading]) -> None:
        """The read at ``t0``: a component unreadable now is in a gap from the run's start.

        When it is read again, what it reports also covers time before the start, which
        never enters the run.
        """
        for r in readings:
            if r.energy_j is None and r.component in self.by_name:
                self.open_gaps[r.component] = (self.t0, r.note or "unreadable")

    def account(
        self,
        now: float,
        readings: Sequence[Reading],
        shares: Mapping[ComponentKind, float],
        component_shares: Mapping[str, float] | None = None,
    ) -> list[Sample]:
        """Account one read of every meter at ``now``, each scaled by its component's share
        (``component_shares``, by name: a GPU shared by several processes) or its kind's.

        Returns the samples of this read (for what adds them up elsewhere: emissions).
        """
        taken: list[Sample] = []
        for r in readings:
            comp = self.by_name.get(r.component)
            if comp is None:
                continue
            share = (component_shares or {}).get(comp.name, shares.get(comp.kind, 1.0))
            last = self.last_read[r.component]
            start = last if r.since_s is None else min(last, r.since_s)
            energy: float | None = None
            note = r.note
            recovered = False
            if r.energy_j is None:
                if r.component not in self.open_gaps:
                    self.open_gaps[r.component] = (last, r.note or "unreadable")
            elif start < self.t0:
                # The energy also covers time before the run's start, in an unknown share:
                # none of it enters the run, and the time up to this read is lost.
                gap_start, gap_note = self.open_gaps.pop(r.component, (self.t0, "unreadable"))
                note = "read again, but what it reports covers time before the run's start"
                self._record_gap(
                    r.component, gap_start, now, f"{gap_note}; {note}: lost", recovered=False
                )
                start = last
            else:
                energy = r.energy_j * share
                gap = self.open_gaps.pop(r.component, None)
                if gap is not None:
                    # The gap ran from the last good read to the last failed one.
                    gap_start, gap_note = gap
                    recovered = r.since_s is not None and r.since_s <= gap_start
                    self._record_gap(r.component, gap_start, last, gap_note, recovered=recovered)
                # Baseline exposure: only time whose energy is known (see run_result).
                self.exposure_s[r.component] += share * (now - start)
            sample = Sample(r.component, start - self.t0, now - self.t0, energy, note)
            taken.append(sample)
            self.timeline.add(sample)
            if self.keeps_pending:
                self.pending_samples.append(sample)
            duration = now - last
            self.root.acc.add(r.component, energy, duration, recovered)
            for win in self.open_windows:
                # A recovered reading covers its whole gap: a window opened during the gap
                # gets the part of the energy that falls after its opening, by time.
                part = share_after(energy, start, now, win.opened_at_s)
                win.acc.add(r.component, part, duration, recovered)
            self.last_read[r.component] = now
            self.last_power_w[r.component] = _power(energy, start, now)
        self.last_tick = now
        return taken

    def _record_gap(
        self, component: str, start: float, end: float, note: str, *, recovered: bool
    ) -> None:
        if end <= start:
            return  # the gap opened at the run's start read and closed at once: no loss
        gap = Gap(component, start - self.t0, end - self.t0, note, recovered=recovered)
        self.gaps.append(gap)
        self.pending_gaps.append(gap)

    # -------------------------------------------------------------------- windows
    def open_window(self, name: str, path: str, now: float) -> _OpenWindow:
        """Open a window at ``now`` (just after the read at ``now``)."""
        win = _OpenWindow(name, path, now - self.t0, now)
        self.open_windows.append(win)
        return win

    def close_window(self, win: _OpenWindow) -> WindowResult:
        """Close a window at the last read; one already closed by :meth:`close` is returned
        as it was recorded then."""
        if win in self.open_windows:
            self.open_windows.remove(win)
            result = self.result_of(win, self.last_tick)
            self.closed_windows.append(result)
            self.pending_windows.append(result)
            return result
        return next(
            w for w in self.closed_windows if w.path == win.path and w.start_s == win.start_s
        )

    def result_of(self, win: _OpenWindow, end: float) -> WindowResult:
        """The figures of a window that ends at ``end``."""
        energies = win.acc.energies(self.components)
        energy, uncertainty = counted_totals(energies)
        return WindowResult(
            name=win.name,
            path=win.path,
            start_s=win.start_s,
            end_s=end - self.t0,
            energy_j=energy,
            uncertainty_j=uncertainty,
            components=energies,
        )

    def live_energy_j(self, win: _OpenWindow | None = None) -> float:
        """Counted energy so far of a window (default: the run), in J."""
        acc = (win or self.root).acc
        return sum(s.energy_j for name, s in acc.slots.items() if self.by_name[name].counted)

    # ------------------------------------------------------------------ the store
    def take_pending(self) -> tuple[list[Sample], list[Gap], list[WindowResult]]:
        """What has not reached the store yet (handed over, and forgotten here)."""
        out = (self.pending_samples, self.pending_gaps, self.pending_windows)
        self.pending_samples, self.pending_gaps, self.pending_windows = [], [], []
        return out

    # -------------------------------------------------------------------- the end
    def close(self) -> None:
        """At the last read: open gaps end as lost, open windows are closed."""
        end = self.last_tick
        for comp, (start, note) in sorted(self.open_gaps.items()):
            gap = Gap(comp, start - self.t0, end - self.t0, note, recovered=False)
            self.gaps.append(gap)
            self.pending_gaps.append(gap)
        self.open_gaps.clear()
        while self.open_windows:
            self.closed_windows.append(self.result_of(self.open_windows.pop(), end))

    def run_result(
        self,
        *,
        run_id: str,
        status: RunStatus,
        scope: Scope,
        started_at: datetime,
        baseline_power: Mapping[str, float],
        baseline_power_w: float | None,
        exit_code: int | None,
        command: tuple[str, ...] | None,
    ) -> RunResult:
        """The frozen result of the run, after :meth:`close` (without carbon figures)."""
        duration = self.last_tick - self.t0
        energies = self.root.acc.energies(self.components)
        energy, uncertainty = counted_totals(energies)
        net = net_uncertainty_j = None
        if baseline_power_w is not None:
            # Idle power is subtracted only over the time whose energy is known.
            net = energy - sum(
                baseline_power.get(c.name, 0.0) * self.exposure_s[c.name]
                for c in self.components
                if c.counted
            )
            net_uncertainty_j = net_uncertainty(
                energy,
                uncertainty,
                net,
                (c.relative_uncertainty for c in self.components if c.counted),
            )
        return RunResult(
            run_id=run_id,
            name=self.root.name,
            status=status,
            scope=scope,
            started_at=started_at,
            ended_at=started_at + timedelta(seconds=duration),
            duration_s=duration,
            energy_j=energy,
            uncertainty_j=uncertainty,
            baseline_power_w=baseline_power_w,
            net_energy_j=net,
            net_uncertainty_j=net_uncertainty_j,
            components=energies,
            windows=tuple(self.closed_windows),
            gaps=tuple(self.gaps),
            exit_code=exit_code,
            command=command,
            host=host_identity(),
            pid=os.getpid(),
            samples=self.timeline.samples(),
        )


def _power(energy_j: float | None, start: float, end: float) -> float | None:
    """The mean power of one sample, in W (None for a gap or an empty interval)."""
    return energy_j / (end - start) if energy_j is not None and end > start else None
