"""The tracker: a background sampler over the meters, named windows, scopes and baseline.

Data flow: meters -> (sampler thread) samples with the scope share applied -> accumulators
for the run and each open window -> (flusher thread, every ``flush_interval_s``) the store.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import inspect
import logging
import math
import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, cast, overload

import psutil

from wattwise._errors import ConfigError, MeterError, WattwiseError
from wattwise._records import (
    CarbonFigures,
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Reading
from wattwise.tracking._accumulate import (
    Accumulator,
    counted_totals,
    net_uncertainty,
    share_after,
)
from wattwise.tracking._clock import Clock, SystemClock
from wattwise.tracking._scope import ProcessTreeShare

if TYPE_CHECKING:
    # Type-only: the intensity parameter's annotation (import-linter skips these imports).
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["RunSink", "Tracker", "Window", "current_tracker", "last_run", "track"]

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

_V = TypeVar("_V")

_current: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar(
    "wattwise_tracker", default=None
)
_last_run: contextvars.ContextVar[RunResult | None] = contextvars.ContextVar(
    "wattwise_last_run", default=None
)
_window_path: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "wattwise_window_path", default=()
)


class RunSink(Protocol):
    """Where a tracker writes a run as it goes (the run store implements this)."""

    def begin_run(
        self,
        *,
        run_id: str,
        name: str,
        scope: Scope,
        started_at: datetime,
        host: str,
        pid: int,
        command: tuple[str, ...] | None,
        components: Sequence[Component],
        baseline_power_w: float | None,
    ) -> None: ...

    def append(
        self,
        run_id: str,
        *,
        samples: Sequence[Sample],
        gaps: Sequence[Gap],
        heartbeat_at: datetime,
    ) -> None: ...

    def add_window(self, run_id: str, window: WindowResult) -> None: ...

    def finish_run(self, result: RunResult) -> None: ...


class ClosableSink(RunSink, Protocol):
    """A sink the tracker opened itself, and so closes (the default run store)."""

    def close(self) -> None: ...


@dataclass
class _Defaults:
    """What a tracker uses where it is handed no store or intensity, and how it computes
    emissions: the run store and :mod:`wattwise.carbon`, set by :func:`set_defaults` from
    ``wattwise/__init__.py``, so that tracking imports neither (docs/architecture.md)."""

    open_store: Callable[[str | None], ClosableSink] | None = None
    resolve_intensity: Callable[[], IntensityProvider | Location] | None = None
    emissions: (
        Callable[
            [Sequence[Sample], datetime, IntensityProvider | Location, Collection[str]],
            CarbonFigures,
        ]
        | None
    ) = None


_defaults = _Defaults()


def set_defaults(
    *,
    open_store: Callable[[str | None], ClosableSink],
    resolve_intensity: Callable[[], IntensityProvider | Location],
    emissions: Callable[
        [Sequence[Sample], datetime, IntensityProvider | Location, Collection[str]],
        CarbonFigures,
    ],
) -> None:
    """Wire the tracker's defaults (called once, by ``wattwise/__init__.py``).

    Args:
        open_store: opens the run store at a URL (None: the configured one).
        resolve_intensity: the intensity to use where a tracker is given none.
        emissions: the emissions of samples ``(samples, started_at, intensity, counted
            component names)``.
    """
    _defaults.open_store = open_store
    _defaults.resolve_intensity = resolve_intensity
    _defaults.emissions = emissions


def _wired(value: _V | None) -> _V:
    if value is None:  # only while wattwise/__init__.py is still running
        raise WattwiseError("wattwise.tracking is used before wattwise finished importing")
    return value


def _reset(var: contextvars.ContextVar[_V], token: contextvars.Token[_V]) -> None:
    """Undo ``var.set``; a generator finalised in another context (by the garbage collector,
    or by asyncio's async generator hooks in a new task) cannot, and need not: that context
    never saw the value."""
    try:
        var.reset(token)
    except ValueError:
        log.debug("wattwise: a context variable was reset from another context")


def _sync_cuda() -> None:
    """Wait for queued CUDA work on every device this process uses, so a window edge falls
    after the work it closes.

    Never initialises CUDA, and makes no context on a device the process has not used: a
    device is waited for when it is the current one or PyTorch's allocator holds memory
    on it (``memory_reserved``), as on every device a kernel has run on.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        cuda = torch.cuda
        if not cuda.is_initialized():
            return
        current, count = cuda.current_device(), cuda.device_count()
    except Exception:
        log.debug("torch.cuda could not be queried at a window edge", exc_info=True)
        return
    for index in range(count):
        try:
            if index == current or cuda.memory_reserved(index) > 0:
                cuda.synchronize(index)
        except Exception:
            log.debug("torch.cuda.synchronize(%d) failed at a window edge", index, exc_info=True)


class _Phase(enum.Enum):
    """Where a tracker is in its one life: new, starting, running, stopped."""

    NEW = "new"
    STARTING = "starting"  # start() was called; a failed start ends here for good
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass
class _OpenWindow:
    name: str
    path: str
    start_s: float
    opened_at_s: float = 0.0  # the sampler clock at the opening (start_s is from t0)
    acc: Accumulator = field(default_factory=Accumulator)


class Window:
    """A named phase inside a running tracker; use as a context manager.

    After the ``with`` block, :attr:`result` holds its :class:`WindowResult`.
    """

    def __init__(self, tracker: Tracker, name: str) -> None:
        self.tracker = tracker
        self.name = name
        self.result: WindowResult | None = None
        self._token: contextvars.Token[tuple[str, ...]] | None = None
        self._open: _OpenWindow | None = None

    def __enter__(self) -> Self:
        path = (*_window_path.get(), self.name)
        self._token = _window_path.set(path)
        self._open = self.tracker._open_window(self.name, "/".join(path))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._open is not None and self._token is not None
        self.result = self.tracker._close_window(self._open)
        _reset(_window_path, self._token)

    @property
    def energy_j(self) -> float:
        """Counted energy so far (or final), in J."""
        if self.result is not None:
            return self.result.energy_j
        if self._open is None:
            return 0.0
        return self.tracker._live_energy(self._open.acc)


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
            raise
        return self

    def _start(self) -> None:
        self._scope = Scope(self.scope)
        if self.flush_interval_s <= 0 or self.flush_interval_s > DEFAULT_FLUSH_INTERVAL_S:
            raise ConfigError(
                f"flush_interval_s must be in (0, {DEFAULT_FLUSH_INTERVAL_S}] s, "
                f"got {self.flush_interval_s}"
            )
        if not 0 <= self.baseline_s < math.inf:
            raise ConfigError(f"baseline must be a finite number >= 0 s, got {self.baseline_s}")
        self._intensity = self._resolve_intensity()
        self._sink = self._open_sink()
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
        self._t0 = self._clock.monotonic()
        self._started_at = self._clock.now()
        self._last_read = {c.name: self._t0 for c in self.components}
        self._last_tick = self._t0
        self._root = _OpenWindow(self.name, "", 0.0)
        self._exposure_s: dict[str, float] = {c.name: 0.0 for c in self.components}
        self._open_windows: list[_OpenWindow] = []
        self._closed_windows: list[WindowResult] = []
        self._open_gaps: dict[str, tuple[float, str]] = {}
        self._gaps: list[Gap] = []
        self._samples: list[Sample] = []
        self._pending_samples: list[Sample] = []
        self._pending_gaps: list[Gap] = []
        self._pending_windows: list[WindowResult] = []
        # The meters were read at baseline end / start: re-read now so the run starts clean.
        # A component unreadable now is in a gap from the run's start: when it is read again,
        # what it reports also covers time before the start, which never enters the run.
        for r in self._read_meters(self._t0):
            if r.energy_j is None and r.component in self._by_name:
                self._open_gaps[r.component] = (self._t0, r.note or "unreadable")

        if self._sink is not None:
            self._sink.begin_run(
                run_id=self.run_id,
                name=self.name,
                scope=self._scope,
                started_at=self._started_at,
                host=socket.gethostname(),
                pid=os.getpid(),
                command=self.command,
                components=self.components,
                baseline_power_w=self.baseline_power_w,
            )
        self._phase = _Phase.RUNNING
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._sample_loop, name="wattwise-sampler", daemon=True)
        ]
        if self._sink is not None:
            self._threads.append(
                threading.Thread(target=self._flush_loop, name="wattwise-flusher", daemon=True)
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
        _sync_cuda()
        with self._lock:
            self._tick(self._clock.monotonic())
            self._phase = _Phase.STOPPED
        self._stop.set()
        for t in self._threads:
            t.join()
        end = self._last_tick
        with self._lock:
            for comp, (start, note) in sorted(self._open_gaps.items()):
                gap = Gap(comp, start - self._t0, end - self._t0, note, recovered=False)
                self._gaps.append(gap)
                self._pending_gaps.append(gap)
            self._open_gaps.clear()
            while self._open_windows:
                self._closed_windows.append(self._result_of(self._open_windows.pop(), end))
        for m in self._meters:
            m.close()
        duration = end - self._t0
        energies = self._root.acc.energies(self.components)
        energy, uncertainty = counted_totals(energies)
        net = net_uncertainty_j = None
        if self.baseline_power_w is not None:
            # Idle power is subtracted only over the time whose energy is known.
            net = energy - sum(
                self._baseline_power.get(c.name, 0.0) * self._exposure_s[c.name]
                for c in self.components
                if c.counted
            )
            net_uncertainty_j = net_uncertainty(
                energy,
                uncertainty,
                net,
                (c.relative_uncertainty for c in self.components if c.counted),
            )
        self.result = RunResult(
            run_id=self.run_id,
            name=self.name,
            status=status,
            scope=self._scope,
            started_at=self._started_at,
            ended_at=self._started_at + timedelta(seconds=duration),
            duration_s=duration,
            energy_j=energy,
            uncertainty_j=uncertainty,
            baseline_power_w=self.baseline_power_w,
            net_energy_j=net,
            net_uncertainty_j=net_uncertainty_j,
            components=energies,
            windows=tuple(self._closed_windows),
            gaps=tuple(self._gaps),
            exit_code=exit_code,
            command=self.command,
            host=socket.gethostname(),
            pid=os.getpid(),
            samples=tuple(self._samples),
        )
        if self._intensity is not None:
            self.result = replace(self.result, carbon=self._carbon(self.result))
        if self._sink is not None:
            try:
                self._flush()
                self._sink.finish_run(self.result)
            except WattwiseError as exc:
                self._warn(f"the run could not be stored: {exc}")
        self._close_owned_store()
        _last_run.set(self.result)
        return self.result

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

    def _carbon(self, result: RunResult) -> CarbonFigures | None:
        assert self._intensity is not None
        counted = {c.name for c in result.components if c.counted}
        try:
            return _wired(_defaults.emissions)(
                result.samples, result.started_at, self._intensity, counted
            )
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
        _sync_cuda()
        with self._lock:
            now = self._clock.monotonic()
            self._tick(now)
            win = _OpenWindow(name, path, now - self._t0, now)
            self._open_windows.append(win)
            return win

    def _close_window(self, win: _OpenWindow) -> WindowResult:
        _sync_cuda()
        with self._lock:
            if self._phase is _Phase.RUNNING:
                self._tick(self._clock.monotonic())
            if win in self._open_windows:
                self._open_windows.remove(win)
                result = self._result_of(win, self._last_tick)
                self._closed_windows.append(result)
                self._pending_windows.append(result)
                return result
            # Already closed by stop(): return what stop recorded.
            return next(
                w for w in self._closed_windows if w.path == win.path and w.start_s == win.start_s
            )

    def _result_of(self, win: _OpenWindow, end: float) -> WindowResult:
        energies = win.acc.energies(self.components)
        energy, uncertainty = counted_totals(energies)
        return WindowResult(
            name=win.name,
            path=win.path,
            start_s=win.start_s,
            end_s=end - self._t0,
            energy_j=energy,
            uncertainty_j=uncertainty,
            components=energies,
        )

    # ------------------------------------------------------------------- live view
    @property
    def energy_j(self) -> float:
        """Counted energy so far, in J (the final figure once stopped)."""
        if self.result is not None:
            return self.result.energy_j
        if self._phase is not _Phase.RUNNING:
            return 0.0
        return self._live_energy(self._root.acc)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        if self.result is not None:
            return self.result.duration_s
        return self._clock.monotonic() - self._t0 if self.running else 0.0

    def _live_energy(self, acc: Accumulator) -> float:
        with self._lock:
            return sum(s.energy_j for name, s in acc.slots.items() if self._by_name[name].counted)

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

    def _tick(self, now: float) -> None:
        """Read every meter once and account the interval. Caller holds the lock."""
        readings = self._read_meters(now)
        shares = self._shares()
        for r in readings:
            comp = self._by_name.get(r.component)
            if comp is None:
                continue
            share = shares.get(comp.kind, 1.0)
            last = self._last_read[r.component]
            start = last if r.since_s is None else min(last, r.since_s)
            energy: float | None = None
            note = r.note
            recovered = False
            if r.energy_j is None:
                if r.component not in self._open_gaps:
                    self._open_gaps[r.component] = (last, r.note or "unreadable")
            elif start < self._t0:
                # The energy also covers time before the run's start, in an unknown share:
                # none of it enters the run, and the time up to this read is lost.
                gap_start, gap_note = self._open_gaps.pop(r.component, (self._t0, "unreadable"))
                note = "read again, but what it reports covers time before the run's start"
                self._record_gap(
                    r.component, gap_start, now, f"{gap_note}; {note}: lost", recovered=False
                )
                start = last
            else:
                energy = r.energy_j * share
                gap = self._open_gaps.pop(r.component, None)
                if gap is not None:
                    # The gap ran from the last good read to the last failed one.
                    gap_start, gap_note = gap
                    recovered = r.since_s is not None and r.since_s <= gap_start
                    self._record_gap(r.component, gap_start, last, gap_note, recovered=recovered)
                # Baseline exposure: only time whose energy is known (see stop).
                self._exposure_s[r.component] += share * (now - start)
            sample = Sample(r.component, start - self._t0, now - self._t0, energy, note)
            self._samples.append(sample)
            self._pending_samples.append(sample)
            duration = now - last
            self._root.acc.add(r.component, energy, duration, recovered)
            for win in self._open_windows:
                # A recovered reading covers its whole gap: a window opened during the gap
                # gets the part of the energy that falls after its opening, by time.
                part = share_after(energy, start, now, win.opened_at_s)
                win.acc.add(r.component, part, duration, recovered)
            self._last_read[r.component] = now
        self._last_tick = now

    def _record_gap(
        self, component: str, start: float, end: float, note: str, *, recovered: bool
    ) -> None:
        if end <= start:
            return  # the gap opened at the run's start read and closed at once: no loss
        gap = Gap(component, start - self._t0, end - self._t0, note, recovered=recovered)
        self._gaps.append(gap)
        self._pending_gaps.append(gap)

    def _sample_loop(self) -> None:
        while not self._clock.wait(self._stop, self._interval):
            with self._lock:
                if self._phase is not _Phase.RUNNING:
                    return
                try:
                    self._tick(self._clock.monotonic())
                except Exception:
                    log.exception("wattwise sampler: a tick failed")

    def _flush(self) -> None:
        assert self._sink is not None
        with self._lock:
            samples, self._pending_samples = self._pending_samples, []
            gaps, self._pending_gaps = self._pending_gaps, []
            windows, self._pending_windows = self._pending_windows, []
        try:
            self._sink.append(
                self.run_id, samples=samples, gaps=gaps, heartbeat_at=self._clock.now()
            )
            for w in windows:
                self._sink.add_window(self.run_id, w)
        except Exception:
            with self._lock:  # keep them for the next try: nothing is dropped
                self._pending_samples[:0] = samples
                self._pending_gaps[:0] = gaps
                self._pending_windows[:0] = windows
            raise

    def _flush_loop(self) -> None:
        while not self._clock.wait(self._stop, self.flush_interval_s):
            try:
                self._flush()
            except Exception as exc:
                log.warning("wattwise: could not write samples to the store yet: %s", exc)


def current_tracker() -> Tracker | None:
    """The tracker of the innermost running ``track()`` block in this context, if any."""
    return _current.get()


def last_run() -> RunResult | None:
    """The result of the last run stopped in this context, if any.

    "This context" is this thread, or this asyncio task: what a call of a function decorated
    with :func:`track` measured is read right after it returns, in the same thread or task,
    even while other threads or tasks run decorated functions of their own::

        @wattwise.track
        def predict(batch): ...

        predict(batch)
        energy_j = wattwise.last_run().energy_j

    A decorated call made inside another running tracker records a window of that run (see
    :func:`track`), not a run, and leaves this unchanged; a coroutine run as its own task
    (``asyncio.gather``, ``create_task``) sets it in that task: call ``last_run()`` there, or
    use ``with track(...) as t`` and ``t.result``.
    """
    return _last_run.get()


_F = TypeVar("_F", bound=Callable[..., Any])


class _Track:
    """What :func:`track` returns: a context manager, and a decorator (a fresh run per call)."""

    def __init__(self, name: str | None, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options
        self._inner: Tracker | Window | None = None

    def __enter__(self) -> Tracker | Window:
        name = self.name if self.name is not None else "run"
        active = _current.get()
        if active is not None and active.running and not self.options:
            self._inner = active.window(name)
        else:
            self._inner = Tracker(name, **self.options)
        return self._inner.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._inner is not None
        inner, self._inner = self._inner, None
        inner.__exit__(exc_type, exc, tb)

    def __call__(self, func: _F) -> _F:
        """Decorate ``func``: each call is measured (its awaited body, for ``async def``)."""
        if not callable(func):
            raise ConfigError(f"track() decorates a function, got {func!r}")
        name = self.name if self.name is not None else getattr(func, "__name__", "run")

        def fresh() -> _Track:  # one tracker per call: calls may overlap (threads, tasks)
            return _Track(name, self.options)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def measure_coroutine(*args: Any, **kwargs: Any) -> Any:
                with fresh():
                    return await func(*args, **kwargs)

            return cast(_F, measure_coroutine)
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def measure_async_generator(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                with fresh():
                    async for item in func(*args, **kwargs):
                        yield item

            return cast(_F, measure_async_generator)
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def measure_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                with fresh():
                    return (yield from func(*args, **kwargs))

            return cast(_F, measure_generator)

        @functools.wraps(func)
        def measure_call(*args: Any, **kwargs: Any) -> Any:
            with fresh():
                return func(*args, **kwargs)

        return cast(_F, measure_call)


@overload
def track(name: _F, /) -> _F: ...


@overload
def track(
    name: str | None = None,
    /,
    *,
    scope: Scope | str | None = None,
    pid: int | None = None,
    meters: Sequence[Meter] | None = None,
    interval_s: float | None = None,
    baseline_s: float | None = None,
    store: RunSink | str | bool | None = None,
    cpu_tdp_w: float | None = None,
    flush_interval_s: float | None = None,
    command: Sequence[str] | None = None,
    intensity: IntensityProvider | Location | None = None,
    emissions: bool | None = None,
    clock: Clock | None = None,
) -> _Track: ...


def track(
    name: str | Callable[..., Any] | None = None,
    /,
    *,
    scope: Scope | str | None = None,
    pid: int | None = None,
    meters: Sequence[Meter] | None = None,
    interval_s: float | None = None,
    baseline_s: float | None = None,
    store: RunSink | str | bool | None = None,
    cpu_tdp_w: float | None = None,
    flush_interval_s: float | None = None,
    command: Sequence[str] | None = None,
    intensity: IntensityProvider | Location | None = None,
    emissions: bool | None = None,
    clock: Clock | None = None,
) -> Any:
    """Measure the energy of a block or of each call of a function.

    ``with wattwise.track("train") as t:`` starts a run (a :class:`Tracker`; after the block
    ``t.result`` is its :class:`RunResult`). Inside a running tracker, ``track("eval")``
    with no option opens a nested named window of that run instead (a :class:`Window`);
    giving any option starts a separate run.

    As a decorator, with or without arguments (``@wattwise.track``,
    ``@wattwise.track("predict", store=False)``), each call is one run (or one window,
    inside a running tracker), named after the function unless ``name`` is given. On an
    ``async def`` the awaited body is measured, on a generator (sync or async) the whole
    iteration. :func:`last_run` gives the call's :class:`RunResult` afterwards. Starting and
    stopping a tracker is synchronous (a few milliseconds; ``baseline_s`` sleeps): inside an
    event loop it blocks the loop that long.

    Every option defaults to None, meaning "the :class:`Tracker` default"; see
    :class:`Tracker` for each in full.

    Args:
        name: the run's or window's name (default: the function's name, else ``run``); or
            the function itself, for ``@wattwise.track`` without parentheses.
        scope: ``machine`` (default: everything the meters see) or ``process`` (the share
            of the process tree rooted at ``pid``).
        pid: root of the process tree for process scope (default: this process).
        meters: the meters to use (default: detected afresh for each run, see
            :func:`wattwise.meters.detect_meters`). A run starts and closes its meters, so
            a decorated function whose calls overlap (threads, tasks) needs the default.
        interval_s: sampling period, in s (default 1 s, shortened to what the meters need).
        baseline_s: idle baseline measured before the run, in s (default 0: none).
        store: where the run is stored: a URL or path, a store, ``False`` for nowhere,
            ``True`` or None for the default store.
        cpu_tdp_w: TDP of one CPU package, in W (overrides the table for the estimate).
        flush_interval_s: how often samples reach the store, in s (default and at most 2 s).
        command: the command line the run wraps, if any.
        intensity: the electricity's carbon intensity: a bundled location or a provider
            (default: ``WATTWISE_ZONE``, the config file, else the world average).
        emissions: compute the run's emissions (default True).
        clock: where times and waits come from (default: the real clock).

    Raises:
        ConfigError: ``name`` is neither a string nor a function.
    """
    if callable(name):
        return _Track(None, {})(name)
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"track() takes a name (a string) or a function, got {name!r}")
    given = {
        "scope": scope,
        "pid": pid,
        "meters": meters,
        "interval_s": interval_s,
        "baseline_s": baseline_s,
        "store": store,
        "cpu_tdp_w": cpu_tdp_w,
        "flush_interval_s": flush_interval_s,
        "command": command,
        "intensity": intensity,
        "emissions": emissions,
        "clock": clock,
    }
    return _Track(name, {k: v for k, v in given.items() if v is not None})
