"""Measuring inference with the tracker: a running tracker is reused, else one is started."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from wattwise._errors import ConfigError
from wattwise._records import Provenance
from wattwise.infer._records import InferenceMeasurement
from wattwise.meters._base import Meter
from wattwise.tracking._records import ComponentEnergy, Scope
from wattwise.tracking._tracker import RunSink, Tracker

__all__ = ["measure_calls", "tracking", "window_source"]


@contextmanager
def tracking(
    tracker: Tracker | None,
    name: str,
    *,
    meters: Sequence[Meter] | None = None,
    store: RunSink | str | bool | None = None,
    scope: Scope | str = Scope.MACHINE,
) -> Iterator[Tracker]:
    """Yield a running tracker: ``tracker`` as it is when it runs already, else ``tracker``
    (or a new one built from the other arguments) started here and stopped at the end."""
    if tracker is None:
        tracker = Tracker(name, meters=meters, store=store, scope=scope)
    if tracker.running:
        yield tracker
        return
    with tracker:
        yield tracker


def window_source(components: Sequence[ComponentEnergy]) -> str:
    """Provenance of a window's energy: ``estimated (cpu-tdp-utilisation)``..."""
    return str(Provenance.from_components(components))


def measure_calls(
    call: Callable[[], object],
    *,
    tracker: Tracker,
    window: str,
    items_per_call: int,
    min_time_s: float = 1.0,
    min_calls: int = 3,
    max_calls: int | None = None,
) -> InferenceMeasurement:
    """Run ``call`` repeatedly inside a tracker window and return what it cost.

    Calls go on until both ``min_calls`` calls were made and ``min_time_s`` has passed (or
    ``max_calls`` is reached): energy sensors and CPU-time counters have a resolution of
    milliseconds, so a window much shorter than a second is mostly rounding.

    Args:
        call: one forward pass (synchronised with the device when it returns).
        tracker: a running tracker.
        window: the window's name.
        items_per_call: inputs per call (the batch size).
        min_time_s: shortest window, in s.
        min_calls: fewest calls.
        max_calls: most calls, or None.

    Raises:
        ConfigError: non-positive counts, or a window outside 0-3600 s.
    """
    if items_per_call < 1 or min_calls < 1 or (max_calls is not None and max_calls < min_calls):
        raise ConfigError("items per call and call counts must be >= 1 (max >= min)")
    if not 0 <= min_time_s <= 3600:  # NaN or inf would never end the window
        raise ConfigError(f"the shortest window must be between 0 and 3600 s, got {min_time_s}")
    calls = 0
    with tracker.window(window) as w:
        t0 = time.perf_counter()
        while True:
            call()
            calls += 1
            if max_calls is not None and calls >= max_calls:
                break
            if calls >= min_calls and time.perf_counter() - t0 >= min_time_s:
                break
    result = w.result
    assert result is not None
    return InferenceMeasurement(
        energy_j=result.energy_j,
        uncertainty_j=result.uncertainty_j,
        duration_s=result.duration_s,
        calls=calls,
        items_per_call=items_per_call,
        source=window_source(result.components),
    )
