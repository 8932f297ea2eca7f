"""``wattwise.track``: a block or each call of a function measured as a run, or as a window
of the running tracker."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from wattwise._errors import ConfigError
from wattwise._records import Member, Scope
from wattwise.meters._base import Meter
from wattwise.tracking._clock import Clock
from wattwise.tracking._context import _current
from wattwise.tracking._journal import StoreOutage
from wattwise.tracking._sink import RunSink
from wattwise.tracking._tracker import Tracker
from wattwise.tracking._window import Window

if TYPE_CHECKING:
    from wattwise.carbon import IntensityProvider, Location

__all__ = ["track"]

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
    join: str | bool | None = None,
    member: Member | None = None,
    prometheus: int | str | None = None,
    outage: StoreOutage | None = None,
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
    join: str | bool | None = None,
    member: Member | None = None,
    prometheus: int | str | None = None,
    outage: StoreOutage | None = None,
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
        join: the id of a run to join as a member (default: ``WATTWISE_RUN_ID``, set by
            ``wattwise run``, or the ``torchrun`` job's; False: never join).
        member: this process's identity in that run (default: from the environment).
        prometheus: serve the run's live power and energy to Prometheus on this port
            (``PORT`` or ``ADDR:PORT``; default: ``WATTWISE_PROMETHEUS_PORT``, else not at
            all); needs ``wattwise[prometheus]`` (docs/monitoring.md).
        outage: while the store cannot be written, how many samples are held in memory
            before they spill to a journal file, and where (default: 50,000, in the user
            data folder; see :class:`StoreOutage`).

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
        "join": join,
        "member": member,
        "prometheus": prometheus,
        "outage": outage,
    }
    return _Track(name, {k: v for k, v in given.items() if v is not None})
