"""The tracker: a background sampler over the meters, named windows, scopes and baseline.

Data flow: meters -> (sampler thread) samples with the scope share applied -> accumulators
for the run and each open window -> (flusher thread, every ``flush_interval_s``) the store.
This module holds the tracker's life (start, baseline, threads, stop); the accounting of
readings and the run's result are ``_ledger.py``'s, windows ``_window.py``'s, the
``track`` API ``_track.py``'s, the sink and its defaults ``_sink.py``'s.

The life is the order of those steps, under one lock; what each step does lives beside
it: the meters (started, read, the baseline, process shares) in ``_tracker_meters.py``, the
store side (sink, flusher, result stored or journaled) in ``_tracker_store.py``, joining a
run with members in ``_tracker_members.py``, emissions in ``_tracker_emissions.py``, the
live snapshot in ``_live.py`` and the outage journal in ``_journal.py``.
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

from wattwise._errors import ConfigError, WattwiseError
from wattwise._records import (
    Member,
    MemberRole,
    RunResult,
    RunStatus,
    Scope,
    WindowResult,
)
from wattwise.meters._base import Component, Meter
from wattwise.tracking._allocation import read_run_allocation
from wattwise.tracking._clock import Clock, SystemClock, Ticker
from wattwise.tracking._context import _current, _last_run, _reset
from wattwise.tracking._cuda import sync_cuda
from wattwise.tracking._journal import Outbox, StoreOutage
from wattwise.tracking._ledger import RunLedger
from wattwise.tracking._live import LiveRun, live_from_ledger, live_from_result, prometheus_address
from wattwise.tracking._members import Membership
from wattwise.tracking._orphans import recover_at_start
from wattwise.tracking._scope import ProcessTreeShare
from wattwise.tracking._sink import ClosableSink, RunSink, _defaults, _wired
from wattwise.tracking._tracker_emissions import carbon_figures, emissions_tally, resolve_intensity
from wattwise.tracking._tracker_members import join_at_start, member_result, member_scope
from wattwise.tracking._tracker_meters import (
    component_shares,
    kind_shares,
    measure_baseline,
    read_meters,
    share_cpus,
    start_meters,
)
from wattwise.tracking._tracker_store import (
    RunOpening,
    begin_run,
    flush,
    flush_loop,
    open_sink,
    store_result,
)
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

_logged_once: set[str] = set()


def _daemon(name: str, target: Callable[..., None], *args: object) -> threading.Thread:
    return threading.Thread(target=target, args=args, name=name, daemon=True)


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
        self._intensity = resolve_intensity(self.emissions, self.intensity)
        self._sink, self._owned_store = open_sink(self.store)  # one opened here closes at stop
        # Journals left by processes that ended go to the store first (tracking/_orphans.py).
        recover_at_start(self._sink, self.outage.journal_dir, self._warn)
        self._outbox: Outbox | None = None
        self._meters, self._meter_components = start_meters(
            self.meters,
            cpu_tdp_w=self.cpu_tdp_w,
            clock=self._clock,
            warn=self._warn,
            warnings=self.warnings,
        )
        self.components = [c for m in self._meters for c in self._meter_components[m]]
        self._by_name = {c.name: c for c in self.components}

        interval = self.interval_s if self.interval_s is not None else DEFAULT_INTERVAL_S
        if not 0 < interval < math.inf:
            raise ConfigError(f"interval_s must be a finite number > 0, got {interval}")
        self._interval = min([interval] + [m.max_interval_s for m in self._meters])

        self._share = ProcessTreeShare(
            self.pid if self.pid is not None else os.getpid(), cpus=share_cpus(self.components)
        )
        if self.baseline_s > 0:
            self._baseline_power = measure_baseline(
                self._meters, self._clock, self.baseline_s, self._warn
            )

        self._share.start()
        self._allocation = read_run_allocation()  # stored with the run (its embodied share)
        # A member joins just before its start read: the store server's clock at the join
        # is its start on the run's timeline (see wattwise.store._groups).
        opening = RunOpening(
            self.run_id,
            self.name,
            self._scope,
            self.command,
            self.components,
            self.baseline_power_w,
            self._allocation,
        )
        joined = self._join(opening)
        t0 = self._clock.monotonic()
        self._started_at = self._clock.now()
        self._ledger = RunLedger(self.name, self.components, t0, pending=self._sink is not None)
        self._tally = emissions_tally(self._intensity, self.components, self._started_at)
        # The meters were read at baseline end / start: re-read now so the run starts clean.
        self._ledger.start_read(read_meters(self._meters, t0))
        self._publish()

        if self._sink is not None:
            self._outbox = begin_run(
                self._sink, self.outage, opening, joined, self._started_at, self._clock, self._warn
            )
        self._phase = _Phase.RUNNING
        self._stop.clear()
        # Each thread's period is made here, before it starts (a fake clock then knows of it).
        sampler = self._clock.every(self._interval, self._stop)
        self._threads = [_daemon("wattwise-sampler", self._sample_loop, sampler)]
        if self._sink is not None:
            flusher = self._clock.every(self.flush_interval_s, self._stop)
            self._threads.append(_daemon("wattwise-flusher", flush_loop, flusher, self._flush))
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
        self.result = member_result(self.result, self._joined_as)
        if self._tally is not None:
            self.result = replace(self.result, carbon=carbon_figures(self._tally, self._warn))
        if self._sink is not None:
            assert self._outbox is not None
            store_result(
                self._sink, self._outbox, self.result, flush_now=self._flush, warn=self._warn
            )
        self._close_owned_store()
        _last_run.set(self.result)
        return self.result

    def _join(self, opening: RunOpening) -> Membership | None:
        """Join the run to join as a member, if any; None: a run alone (a refusal warned)."""
        joined = join_at_start(self._sink, self.join, self.member, opening, self._warn)
        if joined is not None:
            self.run_id, self.role, self.member_of = joined.run_id, joined.role, joined.of
            self._joined_as = joined.member
            self._scope = member_scope(joined, self._scope)
        return joined

    def _close_owned_store(self) -> None:
        owned, self._owned_store = self._owned_store, None
        if owned is not None:
            owned.close()

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

    def follow(self, pid: int) -> None:
        """Attribute process-scope energy to the process tree rooted at ``pid`` from now on.

        ``wattwise run`` starts the tracker first (so the baseline and the first reading
        precede the command) and then follows the command's process.
        """
        with self._lock:
            if self._phase is _Phase.RUNNING:
                self._tick(self._clock.monotonic())
            self.pid = pid
            self._share = ProcessTreeShare(pid, cpus=share_cpus(self.components))
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

    def _tick(self, now: float) -> None:
        """Read every meter once and account the interval. Caller holds the lock."""
        readings = read_meters(self._meters, now)
        shares = kind_shares(self._scope, self._share)
        taken = self._ledger.account(
            now, readings, shares, component_shares(self._scope, self._share, self._meters)
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
        assert self._outbox is not None
        flush(self._ledger, self._lock, self._outbox)
