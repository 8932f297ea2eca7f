"""The lever context: what every lever (training, inference, studies, search) needs to
measure, given once: meters, store, scope and progress. And the one way to get a running
tracker: use the caller's when it runs, else own one built from the context."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeAlias

from wattwise._errors import ConfigError
from wattwise._records import Scope
from wattwise.meters._base import Meter
from wattwise.meters._replay import ReplayMeter
from wattwise.store import RunStore
from wattwise.tracking._tracker import RunSink, Tracker

__all__ = [
    "METER_SPECS",
    "LeverContext",
    "MetersFactory",
    "Progress",
    "StoreArg",
    "meters_from_spec",
    "tracking",
]

#: Makes fresh meters for each tracked run (meters are started and closed per run).
MetersFactory = Callable[[], Sequence[Meter]]
#: Told after each measured run: (runs done, runs planned, what just ran).
Progress = Callable[[int, int, str], None]
#: Where runs go: None (the default store), a URL or path, a store or sink, or False.
StoreArg: TypeAlias = RunStore | RunSink | str | Literal[False] | None

#: What ``--meters`` accepts (``replay:PATH`` plays a trace CSV of ``runs export``).
METER_SPECS = ("auto", "replay:PATH")


def meters_from_spec(spec: str) -> MetersFactory | None:
    """The meters a ``--meters`` value names: ``auto`` (None: detect them) or
    ``replay:PATH`` (a recorded trace, looped, fresh for each run).

    Raises:
        ConfigError: an unknown spec, or a replay trace that cannot be read.
    """
    if spec == "auto":
        return None
    kind, sep, arg = spec.partition(":")
    if kind == "replay" and sep and arg:
        path = Path(arg)
        ReplayMeter.from_csv(path)  # read once here, so a bad file is refused before any work
        return lambda: [ReplayMeter.from_csv(path, loop=True)]
    raise ConfigError(f"unknown meters {spec!r} (use {' or '.join(METER_SPECS)})")


@dataclass(frozen=True)
class LeverContext:
    """How a lever measures: the one argument every ``fit``, ``measure_*``, ``study_*``
    and ``compare`` takes instead of separate meters, store, scope and progress.

    Args:
        meters: makes fresh meters for each tracked run; None detects them.
        store: None (the default store), a URL or path, a :class:`RunStore` (or any run
            sink), or False for nowhere.
        scope: ``machine`` or ``process`` (see :class:`~wattwise.tracking.Scope`).
        progress: told after each measured run.
    """

    meters: MetersFactory | None = None
    store: StoreArg = None
    scope: Scope = Scope.MACHINE
    progress: Progress | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "scope", Scope(self.scope))
        except ValueError:
            raise ConfigError(f"scope must be machine or process, got {self.scope!r}") from None
        store: object = self.store
        if store is True:  # a caller's bool: the default store
            object.__setattr__(self, "store", None)
        elif not (
            store is None or store is False or isinstance(store, str | RunStore)
        ) and not hasattr(store, "begin_run"):
            raise ConfigError(
                f"store must be a URL or path, a RunStore, None or False, not {store!r}"
            )

    @classmethod
    def of(
        cls,
        *,
        meters: MetersFactory | None = None,
        store: StoreArg = None,
        scope: Scope | str = Scope.MACHINE,
        progress: Progress | None = None,
    ) -> LeverContext:
        """A context from loosely typed values (a scope given as text).

        Raises:
            ConfigError: an unknown scope or a bad store.
        """
        try:
            checked = Scope(scope)
        except ValueError:
            raise ConfigError(f"scope must be machine or process, got {scope!r}") from None
        return cls(meters=meters, store=store, scope=checked, progress=progress)

    def with_(self, **changes: object) -> LeverContext:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def tracker(self, name: str) -> Tracker:
        """A fresh (not started) tracker for one run, with fresh meters."""
        return Tracker(
            name,
            meters=list(self.meters()) if self.meters is not None else None,
            store=self.store,
            scope=self.scope,
        )


@contextmanager
def tracking(name: str, context: LeverContext, tracker: Tracker | None = None) -> Iterator[Tracker]:
    """Yield a running tracker, the one rule for every lever: ``tracker`` as it is when it
    runs already (the caller owns it: it is not stopped here), else ``tracker`` (or a new one
    from ``context``) started here and stopped when the block ends."""
    if tracker is None:
        tracker = context.tracker(name)
    if tracker.running:
        yield tracker
        return
    with tracker:
        yield tracker
