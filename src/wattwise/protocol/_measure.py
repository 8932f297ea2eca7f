"""Measuring named callables under a :class:`Protocol`, each repeat a tracker window."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from wattwise._errors import ConfigError
from wattwise._records import Provenance, Record
from wattwise.protocol._spec import Protocol, schedule
from wattwise.protocol._stats import Summary, summarize
from wattwise.tracking._tracker import Tracker

__all__ = ["Measurement", "Repeated", "measure", "measure_calls", "warm_up"]


@dataclass(frozen=True)
class Measurement(Record):
    """Calls of one subject measured inside one tracker window.

    Attributes:
        energy_j: counted energy of the window, in J.
        uncertainty_j: its one-sigma uncertainty, in J.
        duration_s: the window's length, in s.
        calls: calls made in it.
        items_per_call: items each call processes (a batch size; 1 for a training step).
        source: where the energy comes from (``estimated (cpu-tdp-utilisation)``).
    """

    energy_j: float
    uncertainty_j: float
    duration_s: float
    calls: int
    items_per_call: int
    source: str

    derived: ClassVar[tuple[str, ...]] = ("items", "energy_per_item_j", "s_per_call")

    @property
    def items(self) -> int:
        """Items processed."""
        return self.calls * self.items_per_call

    @property
    def energy_per_item_j(self) -> float:
        """Energy per item, in J."""
        return self.energy_j / self.items

    @property
    def energy_per_call_j(self) -> float:
        """Energy per call, in J."""
        return self.energy_j / self.calls

    @property
    def s_per_call(self) -> float:
        """Mean wall time of one call, in s."""
        return self.duration_s / self.calls


@dataclass(frozen=True)
class Repeated(Record):
    """The measured repeats of one subject, in the order they were taken.

    Attributes:
        label: the subject's name.
        measurements: one per repeat.
    """

    label: str
    measurements: tuple[Measurement, ...]

    derived: ClassVar[tuple[str, ...]] = ("energy_per_item_j", "s_per_call")

    @property
    def energy_per_item_j(self) -> Summary:
        """Energy per item over the repeats, in J."""
        return summarize([m.energy_per_item_j for m in self.measurements])

    @property
    def energy_per_call_j(self) -> Summary:
        """Energy per call over the repeats, in J."""
        return summarize([m.energy_per_call_j for m in self.measurements])

    @property
    def s_per_call(self) -> Summary:
        """Wall time per call over the repeats, in s."""
        return summarize([m.s_per_call for m in self.measurements])

    @property
    def total(self) -> Measurement:
        """All repeats as one window: energy, uncertainty (added linearly: one sensor),
        time and calls summed."""
        ms = self.measurements
        return Measurement(
            energy_j=sum(m.energy_j for m in ms),
            uncertainty_j=sum(m.uncertainty_j for m in ms),
            duration_s=sum(m.duration_s for m in ms),
            calls=sum(m.calls for m in ms),
            items_per_call=ms[0].items_per_call,
            source=str(Provenance.combine(m.source for m in ms)),
        )


def warm_up(call: Callable[[], object], protocol: Protocol) -> None:
    """Call ``call`` ``protocol.warmup`` times, untracked: first-call allocation, kernel
    selection and caches are paid here, not by the first measured window.

    For work measured outside :func:`measure` (a request queue, a search) that still warms
    up under the protocol's rule; :func:`measure` warms its subjects itself.
    """
    for _ in range(protocol.warmup):
        call()


def measure_calls(
    call: Callable[[], object],
    *,
    tracker: Tracker,
    window: str,
    protocol: Protocol,
    items_per_call: int = 1,
) -> Measurement:
    """Run ``call`` inside one tracker window until the protocol's window is complete (at
    least ``min_calls`` calls and ``min_time_s``, at most ``max_calls``).

    Args:
        call: one unit of work (synchronised with its device when it returns).
        tracker: a running tracker.
        window: the window's name.
        protocol: the window's length rules.
        items_per_call: items each call processes.

    Raises:
        ConfigError: ``items_per_call`` below 1.
    """
    if items_per_call < 1:
        raise ConfigError(f"items per call must be >= 1, got {items_per_call}")
    calls = 0
    with tracker.window(window) as w:
        t0 = time.perf_counter()
        while True:
            call()
            calls += 1
            if protocol.max_calls is not None and calls >= protocol.max_calls:
                break
            if calls >= protocol.min_calls and time.perf_counter() - t0 >= protocol.min_time_s:
                break
    result = w.result
    assert result is not None
    return Measurement(
        energy_j=result.energy_j,
        uncertainty_j=result.uncertainty_j,
        duration_s=result.duration_s,
        calls=calls,
        items_per_call=items_per_call,
        source=str(Provenance.from_components(result.components)),
    )


def measure(
    subjects: Mapping[str, Callable[[], object]],
    protocol: Protocol,
    *,
    tracker: Tracker,
    items_per_call: Mapping[str, int] | int = 1,
    warm_ups: Mapping[str, Callable[[], object]] | None = None,
    window: Callable[[str, int], str] = lambda label, repeat: f"{label} #{repeat}",
    on_repeat: Callable[[str, int, Measurement], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Repeated]:
    """Measure every subject under ``protocol``: warm each up, then its repeats in the
    protocol's order (each one tracker window), cooling down between them.

    Args:
        subjects: the callables, by label (each call one unit of work).
        protocol: repeats, warm-up, window length, order and cool-down.
        tracker: a running tracker (see :func:`~wattwise.protocol.tracking`).
        items_per_call: items per call, for every subject or by label.
        warm_ups: what warms a subject up, by label (default: the subject itself); called
            ``protocol.warmup`` times before the subject's first measured repeat.
        window: the name of a repeat's window, from (label, repeat).
        on_repeat: told after each measured repeat.
        sleep: how the cool-down sleeps (tests pass a fake).

    Returns:
        The repeats of each subject, by label, in the order of ``subjects``.

    Raises:
        ConfigError: no subjects, or a tracker that is not running.
    """
    if not subjects:
        raise ConfigError("nothing to measure")
    if not tracker.running:
        raise ConfigError("measure() needs a running tracker (use wattwise.protocol.tracking)")
    warmed: set[str] = set()
    taken: dict[str, list[Measurement]] = {label: [] for label in subjects}
    for repeat, label in schedule(list(subjects), protocol, sleep=sleep):
        if label not in warmed:
            warm_up((warm_ups or {}).get(label, subjects[label]), protocol)
            warmed.add(label)
        n = items_per_call if isinstance(items_per_call, int) else items_per_call[label]
        m = measure_calls(
            subjects[label],
            tracker=tracker,
            window=window(label, repeat),
            protocol=protocol,
            items_per_call=n,
        )
        taken[label].append(m)
        if on_repeat is not None:
            on_repeat(label, repeat, m)
    return {label: Repeated(label, tuple(ms)) for label, ms in taken.items()}
