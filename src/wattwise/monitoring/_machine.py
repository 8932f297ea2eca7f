"""The machine's meters, read on a thread for ``wattwise exporter``: energy per component
since the exporter started, the power over the last reading, gaps.

Not a tracked run: an exporter runs for weeks, so it keeps no samples, only each
component's running totals (:class:`~wattwise.tracking._accumulate.Accumulator`, the
tracker's own), and stores nothing. A reading that fails puts its component in a gap (no
power is served for it); a counter read again that recovers the gap's energy counts it, as
the tracker does. Its emissions so far are the counted energy at the zone's (constant,
bundled) intensity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from wattwise._errors import MeterError, WattwiseError
from wattwise._records import Scope
from wattwise.carbon import Location, emissions_for_energy
from wattwise.meters._base import Component, Meter, Reading
from wattwise.meters._registry import detect_meters
from wattwise.tracking._accumulate import Accumulator
from wattwise.tracking._clock import Clock, SystemClock, Ticker
from wattwise.tracking._live import LiveRun, live_from_energies

__all__ = ["MACHINE_RUN_ID", "MachineMonitor"]

#: The ``run_id`` (and ``run_name``) label of the machine exporter's series.
MACHINE_RUN_ID = "machine"


class MachineMonitor:
    """Reads every meter of this machine each ``interval_s`` until closed.

    Args:
        meters: the meters (default: :func:`wattwise.meters.detect_meters`).
        interval_s: reading period in s, shortened to what the meters need.
        cpu_tdp_w: the CPU's TDP in W, for detection (see ``wattwise meters``).
        clock: where times and waits come from (default: the real clock).
        location: where the electricity comes from, for the emissions so far (the counted
            energy x its intensity x PUE); None: no emissions.
    """

    def __init__(
        self,
        meters: Sequence[Meter] | None = None,
        *,
        interval_s: float = 1.0,
        cpu_tdp_w: float | None = None,
        clock: Clock | None = None,
        location: Location | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.location = location
        given = list(meters) if meters is not None else detect_meters(cpu_tdp_w=cpu_tdp_w).meters
        self.warnings: list[str] = []
        self._meters: list[Meter] = []
        self.components: list[Component] = []
        now = self._clock.monotonic()
        for m in given:
            try:
                self.components.extend(m.start(now))
            except MeterError as exc:
                self.warnings.append(f"{m.name}: {exc}")
                continue
            self._meters.append(m)
            hint = getattr(m, "hint", None)
            if isinstance(hint, str) and hint:
                self.warnings.append(hint)
        if not self._meters:
            raise WattwiseError("no energy meter could be started: " + "; ".join(self.warnings))
        self.interval_s = min([interval_s] + [m.max_interval_s for m in self._meters])
        self._by_name = {c.name: c for c in self.components}
        self._lock = threading.Lock()
        self._acc = Accumulator()
        self._t0 = now
        self._started_at = self._clock.now()
        self._last_read = dict.fromkeys(self._by_name, now)
        self._last_tick = now
        self._power_w: dict[str, float | None] = {}
        self._in_gap: set[str] = set()
        self._stop = threading.Event()
        with self._lock:
            self._account(now, self._read(now))
        ticker = self._clock.every(self.interval_s, self._stop)
        self._thread = threading.Thread(
            target=self._loop, args=(ticker,), name="wattwise-exporter", daemon=True
        )
        self._thread.start()

    def _read(self, now: float) -> list[Reading]:
        return [r for m in self._meters for r in m.read(now)]

    def _account(self, now: float, readings: Sequence[Reading]) -> None:
        for r in readings:
            if r.component not in self._by_name:
                continue
            last = self._last_read[r.component]
            begin = last if r.since_s is None else min(last, r.since_s)
            if r.energy_j is None:
                self._in_gap.add(r.component)
                self._acc.add(r.component, None, now - last, False)
                self._power_w[r.component] = None
            elif begin < self._t0:
                # Read again, but what it reports also covers time before the start: lost.
                self._in_gap.discard(r.component)
                self._acc.add(r.component, None, now - last, False)
                self._power_w[r.component] = None
            else:
                recovered = r.component in self._in_gap and r.since_s is not None
                self._acc.add(r.component, r.energy_j, now - last, recovered)
                self._in_gap.discard(r.component)
                self._power_w[r.component] = r.energy_j / (now - begin) if now > begin else None
            self._last_read[r.component] = now
        self._last_tick = now

    def _loop(self, ticker: Ticker) -> None:
        while not ticker.wait():
            now = self._clock.monotonic()
            readings = self._read(now)
            with self._lock:
                self._account(now, readings)

    def live(self) -> LiveRun:
        """The machine's figures since the exporter started."""
        with self._lock:
            live = live_from_energies(
                run_id=MACHINE_RUN_ID,
                name=MACHINE_RUN_ID,
                scope=Scope.MACHINE,
                started_at=self._started_at,
                elapsed_s=self._last_tick - self._t0,
                energies=self._acc.energies(self.components),
                power_w=dict(self._power_w),
                in_gap=set(self._in_gap),
            )
        if self.location is None:
            return live
        carbon = emissions_for_energy(live.energy_j, self.location)
        return replace(live, emissions_g=carbon.emissions_g, zone=carbon.zone)

    def close(self) -> None:
        """Stop reading and close the meters."""
        self._stop.set()
        self._thread.join()
        for m in self._meters:
            m.close()
