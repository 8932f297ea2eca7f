"""The tracker: a background sampler over the meters, named windows, scopes and baseline.

Data flow: meters -> (sampler thread) samples with the scope share applied -> accumulators
for the run and each open window -> (flusher thread, every ``flush_interval_s``) the store.
This module holds the tracker's life (start, baseline, threads, stop); the accounting of
readings and the run's result are ``_ledger.py``'s, windows ``_window.py``'s, the
``track`` API ``_track.py``'s, the sink and its defaults ``_sink.py``'s.

Why ~630 lines (joining a run with members is ``_members.py``'s, the live snapshot
``_live.py``'s, the outage journal ``_journal.py``'s): the start (meters, baseline, threads)
and the stop (last reading, threads joined, result stored) are one life cycle with one lock;
splitting them would spread the order of those steps, which is what this module is for,
over two files.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

import psutil

from wattwise._errors import ConfigError, MeterError, WattwiseError
from wattwise._records import (
    CarbonFigures,
    Member,
    MemberRole,
    RunResult,
    RunStatus,
    Scope,
    WindowResult,
    host_identity,
)
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Reading
from wattwise.tracking._allocation import read_run_allocation
from wattwise.tracking._clock import Clock, SystemClock, Ticker
from wattwise.tracking._context import _current, _last_run, _reset
from wattwise.tracking._cuda import sync_cuda
from wattwise.tracking._emissions import EmissionsTally
from wattwise.tracking._journal import Outbox, StoreOutage
from wattwise.tracking._ledger import RunLedger
from wattwise.tracking._live import LiveRun, live_from_ledger, live_from_result, prometheus_address
from wattwise.tracking._members import JoinPlan, plan_join, try_join
from wattwise.tracking._orphans import recover_at_start
from wattwise.tracking._scope import ProcessTreeShare
from wattwise.tracking._sink import ClosableSink, RunSink, _defaults, _wired
from wattwise.tracking._window import Window, _OpenWindow

if TYPE_CHECKING:
    # Type-only: the intensity parameter's annotation (import-linter skips these imports).
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["RunSink", "Tracker", "Window"]

log = logging.getLogger("wattwise")

#: Default sampling period, in s. Reading a few counters costs well under a millisecond, so
#: at 1 s the sampler's share of one core stays far below 0.1 %.
DEFAULT_INTERVAL_S = 1.0
#: Samples reach the store at least this often, so a killed process loses at most this much.
DEFAULT_FLUSH_INTERVAL_S = 2.0
#: Log-record attribute marking a note about this machine's configuration (the same on every
#: run until the user acts on it): the CLI shows such a note once per machine, not per run.
NOTE_ONCE_ATTR = "wattwise_note_once"

_CPU_SHARED_KINDS = frozenset(
    {
        ComponentKind.CPU,
        ComponentKind.DRAM,
        ComponentKind.CPU_CORE,
        ComponentKind.CPU_UNCORE,
        ComponentKind.PSYS,
    }
)

_logged_once: set[str] = set()


class _Phase(enum.Enum):
    """Where a tracker is in its one life: new, starting, running, stopped."""

    NEW = "new"
    STARTING = "starting"  # start() was called; a failed start ends here for good
    RUNNING = "running"
    STOPPED = "stopped"


class Tracker:
    """Measures the energy of a block of work with a background sampler.

    The constructor only stores its arguments; meters are found and started in
    :meth:`start` (or on entering the ``with`` block).

    Args:
        name: the run's name.
        scope: ``machine`` (everything the meters see) or ``process`` (the share of the
            process tree rooted at ``pid``).
        pid: root of the process tree for process scope (default: this process).
        meters: meters to use; default: :func:`wattwise.meters.detect_meters`.
        interval_s: sampling period in s (default 1 s, shortened to what the meters need,
            e.g. a quarter of a RAPL counter's wrap period).
        baseline_s: seconds of idle baseline measured before the run (0: none).
        store: a run sink/store; ``None`` opens the default store, ``False`` stores nothing.
        cpu_tdp_w: TDP of one CPU package in W; overrides the table for the estimate
            (and bounds RAPL's wrap period where zones state no maximum power).
        flush_interval_s: how often samples are written to the store, in s (<= 2 s).
        command: the command line, when the run wraps a command.
        intensity: where the electricity comes from, for emissions: a bundled
            :class:`~wattwise.carbon.Location`, a time-varying provider (an intensity trace),
            or None to resolve ``WATTWISE_ZONE`` / the config file / the world average.
        emissions: compute emissions at the end of the run (default True).
        clock: where times and waits come from (default: the real clock); tests pass
            :class:`wattwise.testing.FakeClock`.
        join: the id of a run to join as one of its members (docs/run.md, "Many
            processes, one run"); None: the one ``WATTWISE_RUN_ID`` or the
            ``torchrun`` environment names, if any; False: never join.
        member: this process's identity in that run (default: from ``RANK``,
            ``LOCAL_RANK``, ``WORLD_SIZE``, ``WATTWISE_HOST`` and the pid).
        prometheus: serve the run to Prometheus on this port (or ``"ADDR:PORT"``; default:
            ``WATTWISE_PROMETHEUS_PORT``, else not at all); docs/monitoring.md.
        outage: while the store cannot be written, how many samples are held in memory
            before they spill to a local journal file, and where it goes (default:
            :class:`StoreOutage`: 50,000 samples, ``<user data dir>/wattwise/journal``).
    """

    def __init__(
        self,
        name: str = "run",
        *,
        scope: Scope | str = Scope.MACHINE,
        pid: int | None = None,
        meters: Sequence[Meter] | None = None,
        interval_s: float | None = None,
        baseline_s: float = 0.0,
        store: RunSink | str | bool | None = None,
        cpu_tdp_w: float | None = None,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        command: Sequence[str] | None = None,
        intensity: IntensityProvider | Location | None = None,
        emissions: bool = True,
        clock: Clock | None = None,
        join: str | bool | None = None,
        member: Member | None = None,
        prometheus: int | str | None = None,
        outage: StoreOutage | None = None,
    ) -> None:
        self.name = name
        self.scope = scope
        self.pid = pid
        self.meters = meters
        self.interval_s = interval_s
        self.baseline_s = baseline_s
        self.store = store
        self.cpu_tdp_w = cpu_tdp_w
        self.flush_interval_s = flush_interval_s
        self.command = tuple(command) if command is not None else None
        self.intensity = intensity
        self.emissions = emissions
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.join = join
        self.member = member
        #: ``host`` or ``rank`` once this tracker joined a run with members, else None.
        self.role: MemberRole | None = None
        #: The id of the run this tracker joined (its members share it), else None.
        self.member_of: str | None = None
        self._joined_as: Member | None = None
        self.prometheus = prometheus
        self._unpublish: Callable[[], None] | None = None
        self.outage = outage if outage is not None else StoreOutage()

        self.run_id = uuid.uuid4().hex
        self.result: RunResult | None = None
        self.warnings: list[str] = []
        self.components: list[Component] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._phase = _Phase.NEW
        self._baseline_power: dict[str, float] = {}
        self._token: contextvars.Token[Tracker | None] | None = None
        self._owned_store: ClosableSink | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        """Whether the tracker is sampling."""
        return self._phase is _Phase.RUNNING

    def start(self) -> Self:
        """Find and start the meters, measure the baseline, start the sampler.

        Raises:
            ConfigError: a bad setting (interval, baseline, zone).
            StoreError: the store cannot be opened.
            WattwiseError: no meter could be started.
        """
        if self._phase is not _Phase.NEW:
            raise WattwiseError("this tracker was already started; create a new one")
        self._phase = _Phase.STARTING  # a failed start is not retried either
        self._meters: list[Meter] = []
        try:
            self._start()
        except BaseException:
            for m in self._meters:
                m.close()
            self._close_owned_store()
            if self._unpublish is not None:
                self._unpublish()
            raise
        return self

    def _start(self) -> None:
        self._scope = Scope(self.scope)
        self._prometheus_at = prometheus_address(self.prometheus, os.environ)
        if self.flush_interval_s <= 0 or self.flush_interval_s > DEFAULT_FLUSH_INTERVAL_S:
            raise ConfigError(
                f"flush_interval_s must be in (0, {DEFAULT_FLUSH_INTERVAL_S}] s, "
                f"got {self.flush_interval_s}"
            )
        if not 0 <= self.baseline_s < math.inf:
            raise ConfigError(f"baseline must be a finite number >= 0 s, got {self.baseline_s}")
        self._intensity = self._resolve_intensity()
        self._sink = self._open_sink()
        # Journals left by processes that ended go to the store first (tracking/_orphans.py).
        recover_at_start(self._sink, self.outage.journal_dir, self._warn)
        self._outbox = None
        self._meters = self._start_meters()
        self.components = [c for m in self._meters for c in self._meter_components[m]]
        self._by_name = {c.name: c for c in self.components}

        interval = self.interval_s if self.interval_s is not None else DEFAULT_INTERVAL_S
        if not 0 < interval < math.inf:
            raise ConfigError(f"interval_s must be a finite number > 0, got {interval}")
        self._interval = min([interval] + [m.max_interval_s for m in self._meters])

        self._share = ProcessTreeShare(
            self.pid if self.pid is not None else os.getpid(), cpus=self._share_cpus()
        )
        if self.baseline_s > 0:
            self._measure_baseline()

        self._share.start()
        self._allocation = read_run_allocation()  # stored with the run (its embodied share)
        # A member joins just before its start read: the store server's clock at the join
        # is its start on the run's timeline (see wattwise.store._groups).
        plan = plan_join(self.join, self.member) if self._sink is not None else None
        joined = self._sink is not None and plan is not None and self._join(self._sink, plan)
        t0 = self._clock.monotonic()
        self._started_at = self._clock.now()
        self._ledger = RunLedger(self.name, self.components, t0, pending=self._sink is not None)
        self._tally = self._emissions_tally()
        # The meters were read at baseline end / start: re-read now so the run starts clean.
        self._ledger.start_read(self._read_meters(t0))
        self._publish()

        if self._sink is not None and not joined:
            self._sink.begin_run(
                run_id=self.run_id,
                name=self.name,
                scope=self._scope,
                started_at=self._started_at,
                host=host_identity(),
                pid=os.getpid(),
                command=self.command,
                components=self.components,
                baseline_power_w=self.baseline_power_w,
                allocation=self._allocation,
            )
        if self._sink is not None:
            # Made once the run id is final (a member takes the id of the run it joined).
            self._outbox = Outbox(
                self._sink, self.run_id, self.outage, warn=self._warn, now=self._clock.now
            )
        self._phase = _Phase.RUNNING
        self._stop.clear()
        # Each thread's period is made here, before it starts (a fake clock then knows of it).
        sampler = self._clock.every(self._interval, self._stop)
        self._threads = [
            threading.Thread(
                target=self._sample_loop, args=(sampler,), name="wattwise-sampler", daemon=True
            )
        ]
        if self._sink is not None:
            flusher = self._clock.every(self.flush_interval_s, self._stop)
            self._threads.append(
                threading.Thread(
                    target=self._flush_loop, args=(flusher,), name="wattwise-flusher", daemon=True
                )
            )
        for t in self._threads:
            t.start()

    def stop(
        self, *, status: RunStatus = RunStatus.COMPLETED, exit_code: int | None = None
    ) -> RunResult:
        """Take a last reading, stop the sampler, store and return the result."""
        if self._phase is not _Phase.RUNNING:
            if self.result is not None:
                return self.result
            raise WattwiseError("this tracker was never started")
        sync_cuda()
        with self._lock:
            self._tick(self._clock.monotonic())
            self._phase = _Phase.STOPPED
        self._stop.set()
        for t in self._threads:
            t.join()
        with self._lock:
            self._ledger.close()
        for m in self._meters:
            m.close()
        self.result = self._ledger.run_result(
            run_id=self.run_id,
            status=status,
            scope=self._scope,
            started_at=self._started_at,
            baseline_power=self._baseline_power,
            baseline_power_w=self.baseline_power_w,
            exit_code=exit_code,
            command=self.command,
        )
        self.result = replace(self.result, allocation=self._allocation)
        if self._joined_as is not None:
            who = self._joined_as
            self.result = replace(self.result, host=who.host, pid=who.pid)
        if self._intensity is not None:
            self.result = replace(self.result, carbon=self._carbon(self.result))
        if self._sink is not None:
            try:
                self._flush()
                # The samples were streamed by the flusher; the result's are its bounded
                # timeline (tracking/_timeline.py), which the store keeps for reports.
                self._sink.finish_run(self.result)
            except WattwiseError as exc:
                assert self._outbox is not None
                kept = self._outbox.keep()
                path = self._outbox.journal.path
                note = f"; its {kept:,} samples not stored are kept in {path}" if kept else ""
                self._warn(f"the run could not be stored: {exc}{note}")
        self._close_owned_store()
        _last_run.set(self.result)
        return self.result

    def _join(self, sink: RunSink, plan: JoinPlan) -> bool:
        """Join the run to join as a member; False when refused (warned: a run alone)."""
        joined = try_join(
            sink,
            plan,
            run_id=self.run_id,
            name=self.name,
            scope=self._scope,
            command=self.command,
            components=self.components,
            baseline_power_w=self.baseline_power_w,
            warn=self._warn,
            allocation=self._allocation,
        )
        if joined is None:
            return False
        self.run_id, self.role, self.member_of = joined.run_id, joined.role, joined.of
        self._joined_as = joined.member
        if joined.role is MemberRole.RANK:
            self._scope = Scope.PROCESS  # another member reads this host's meters
        return True

    def _close_owned_store(self) -> None:
        owned, self._owned_store = self._owned_store, None
        if owned is not None:
            owned.close()

    def _resolve_intensity(self) -> IntensityProvider | Location | None:
        if not self.emissions:
            return None
        if self.intensity is not None:
            return self.intensity
        return _wired(_defaults.resolve_intensity)()  # env / config / world; no network

    def _emissions_tally(self) -> EmissionsTally | None:
        """Emissions added up as samples are taken (the run's samples are not kept)."""
        if self._intensity is None:
            return None
        counted = {c.name for c in self.components if c.counted}
        emissions = _wired(_defaults.emissions)
        return EmissionsTally(emissions, self._started_at, self._intensity, counted)

    def _carbon(self, result: RunResult) -> CarbonFigures | None:
        assert self._tally is not None
        try:
            return self._tally.figures()
        except WattwiseError as exc:
            self._warn(f"emissions could not be computed: {exc}")
            return None

    def __enter__(self) -> Self:
        self.start()
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _reset(_current, self._token)
            self._token = None
        if exc_type is None or issubclass(exc_type, GeneratorExit):
            # GeneratorExit: a measured generator's consumer stopped early, not a failure.
            status = RunStatus.COMPLETED
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit | asyncio.CancelledError):
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.FAILED
        self.stop(status=status)

    def _share_cpus(self) -> range | None:
        """The CPUs whose busy time process scope shares out.

        A measured CPU component (RAPL) covers whole packages, so the share is of every CPU;
        the estimate charges only the CPUs this process may run on (the default).
        """
        measured = any(
            c.kind in _CPU_SHARED_KINDS and c.source.method is Method.MEASURED
            for c in self.components
        )
        return range(psutil.cpu_count(logical=True) or 1) if measured else None

    def follow(self, pid: int) -> None:
        """Attribute process-scope energy to the process tree rooted at ``pid`` from now on.

        ``wattwise run`` starts the tracker first (so the baseline and the first reading
        precede the command) and then follows the command's process.
        """
        with self._lock:
            if self._phase is _Phase.RUNNING:
                self._tick(self._clock.monotonic())
            self.pid = pid
            self._share = ProcessTreeShare(pid, cpus=self._share_cpus())
            self._share.start()

    # ------------------------------------------------------------------- windows
    def window(self, name: str) -> Window:
        """A named phase of this run (``train``, ``eval``); windows nest."""
        if not name or "/" in name:
            raise ConfigError(f"a window name must be non-empty without '/': {name!r}")
        return Window(self, name)

    def _open_window(self, name: str, path: str) -> _OpenWindow:
        if self._phase is not _Phase.RUNNING:
            raise WattwiseError("a window can only be opened while the tracker runs")
        sync_cuda()
        with self._lock:
            now = self._clock.monotonic()
            self._tick(now)
            return self._ledger.open_window(name, path, now)

    def _close_window(self, win: _OpenWindow) -> WindowResult:
        sync_cuda()
        with self._lock:
            if self._phase is _Phase.RUNNING:
                self._tick(self._clock.monotonic())
            return self._ledger.close_window(win)  # or what stop() recorded for it

    # ------------------------------------------------------------------- live view
    @property
    def energy_j(self) -> float:
        """Counted energy so far, in J (the final figure once stopped)."""
        if self.result is not None:
            return self.result.energy_j
        if self._phase is not _Phase.RUNNING:
            return 0.0
        return self._live_energy()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        if self.result is not None:
            return self.result.duration_s
        return self._clock.monotonic() - self._ledger.t0 if self.running else 0.0

    def live(self) -> LiveRun | None:
        """The run's figures now (the final ones once stopped; None before it starts): per
        component energy, uncertainty, provenance, last power, gap. Prometheus reads it."""
        if self.result is not None:
            return live_from_result(self.result)
        if not hasattr(self, "_ledger"):
            return None
        with self._lock:
            return live_from_ledger(self._ledger, self.run_id, self._scope, self._started_at)

    def _publish(self) -> None:
        """Serve this run to Prometheus when asked to (argument or environment)."""
        if self._prometheus_at is not None:
            serve = _wired(_defaults.serve_prometheus)
            self._unpublish = serve(self.live, *self._prometheus_at)

    def _live_energy(self, win: _OpenWindow | None = None) -> float:
        with self._lock:
            return self._ledger.live_energy_j(win)

    @property
    def baseline_power_w(self) -> float | None:
        """Idle power of the counted components measured before the run, in W."""
        if self.baseline_s <= 0 or self._phase is _Phase.NEW:
            return None
        return sum(p for name, p in self._baseline_power.items() if self._by_name[name].counted)

    # ------------------------------------------------------------------ internals
    def _warn(self, message: str, *, about_machine: bool = False) -> None:
        self.warnings.append(message)
        if message not in _logged_once:  # a hint repeated on every run helps nobody
            _logged_once.add(message)
            log.warning(message, extra={NOTE_ONCE_ATTR: about_machine})

    def _open_sink(self) -> RunSink | None:
        if self.store is False:
            return None
        if self.store is None or self.store is True or isinstance(self.store, str):
            url = self.store if isinstance(self.store, str) else None
            store = _wired(_defaults.open_store)(url)
            self._owned_store = store  # opened here, so closed here (see stop)
            return store
        return self.store

    def _start_meters(self) -> list[Meter]:
        from wattwise.meters._registry import detect_meters

        meters = (
            list(self.meters)
            if self.meters is not None
            else detect_meters(cpu_tdp_w=self.cpu_tdp_w).meters
        )
        self._meter_components: dict[Meter, list[Component]] = {}
        started = []
        now = self._clock.monotonic()
        for m in meters:
            try:
                self._meter_components[m] = m.start(now)
            except MeterError as exc:
                self._warn(f"{m.name}: {exc}")
                continue
            started.append(m)
            hint = getattr(m, "hint", None)
            if isinstance(hint, str) and hint:
                self._warn(hint, about_machine=True)
        if not started:
            raise WattwiseError("no energy meter could be started: " + "; ".join(self.warnings))
        names = [c.name for m in started for c in self._meter_components[m]]
        if len(names) != len(set(names)):
            raise ConfigError(f"two meters report components of the same name: {names}")
        return started

    def _read_meters(self, now: float) -> list[Reading]:
        readings: list[Reading] = []
        for m in self._meters:
            readings.extend(m.read(now))
        return readings

    def _measure_baseline(self) -> None:
        start = self._clock.monotonic()
        self._read_meters(start)
        self._clock.sleep(self.baseline_s)
        end = self._clock.monotonic()
        energy: dict[str, float] = {}
        for r in self._read_meters(end):
            if r.energy_j is None:
                self._warn(f"baseline: {r.component} could not be read ({r.note})")
                continue
            if r.since_s is not None and r.since_s < start:
                self._warn(f"baseline: {r.component} could not be read at the baseline's start")
                continue
            energy[r.component] = r.energy_j
        self._baseline_power = {k: v / (end - start) for k, v in energy.items()}

    def _shares(self) -> dict[ComponentKind, float]:
        if self._scope is Scope.MACHINE:
            return {}
        cpu = self._share.cpu_share()
        shares = dict.fromkeys(_CPU_SHARED_KINDS, cpu)
        shares[ComponentKind.RAM] = self._share.memory_share()
        return shares

    def _component_shares(self) -> dict[str, float]:
        """Process scope's per-component shares the meters can tell (a shared GPU's)."""
        if self._scope is Scope.MACHINE:
            return {}
        pids = self._share.pids()
        return {k: v for m in self._meters for k, v in m.process_shares(pids).items()}

    def _tick(self, now: float) -> None:
        """Read every meter once and account the interval. Caller holds the lock."""
        taken = self._ledger.account(
            now, self._read_meters(now), self._shares(), self._component_shares()
        )
        if self._tally is not None:
            self._tally.add(taken)

    def _sample_loop(self, ticker: Ticker) -> None:
        while not ticker.wait():
            with self._lock:
                if self._phase is not _Phase.RUNNING:
                    return
                try:
                    self._tick(self._clock.monotonic())
                except Exception:
                    log.exception("wattwise sampler: a tick failed")

    def _flush(self) -> None:
        """Hand what the ledger has not sent to the outbox, which writes it (after what it
        held) or holds it: in memory, past a bound in a journal file (tracking/_journal.py)."""
        assert self._outbox is not None
        with self._lock:
            samples, gaps, windows = self._ledger.take_pending()
        self._outbox.send(samples, gaps, windows)

    def _flush_loop(self, ticker: Ticker) -> None:
        while not ticker.wait():
            try:
                self._flush()
            except Exception:  # the outbox held it and told the user once
                log.debug("wattwise: could not write samples to the store yet", exc_info=True)
