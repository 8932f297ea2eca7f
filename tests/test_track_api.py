"""The ``wattwise.track`` Python API (issue 11, section 5), with real tracking.

Bare ``@wattwise.track``, ``async def`` and generators measured over their body, the call's
result through ``wattwise.last_run()`` (per thread and per asyncio task), explicit options.
The meter is the real CPU/RAM estimate of this machine; stores are real SQLite files.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import wattwise
from wattwise import ConfigError, RunResult, RunStatus, Tracker, Window
from wattwise.meters import EstimateMeter
from wattwise.store import RunStore
from wattwise.testing import FakeClock

# Every decorated function here: the estimate meter, nothing stored, fast sampling.
FAST = {"store": False, "interval_s": 0.02, "emissions": False}


def estimate() -> EstimateMeter:
    return EstimateMeter(cpu_tdp_w=65.0)


def test_bare_decorator_measures_each_call_named_after_the_function() -> None:
    @wattwise.track
    def predict(x: int) -> int:
        """Doubles."""
        time.sleep(0.05)
        return 2 * x

    assert predict.__name__ == "predict" and predict.__doc__ == "Doubles."
    assert predict(21) == 42
    first = wattwise.last_run()
    assert isinstance(first, RunResult)
    assert first.name == "predict" and first.status is RunStatus.COMPLETED
    assert first.duration_s >= 0.05
    assert first.energy_j > 0 and first.provenance == "estimated"
    predict(1)
    second = wattwise.last_run()
    assert second is not None and second.run_id != first.run_id


def test_bare_decorator_stores_in_the_default_store(tmp_path: Path) -> None:
    @wattwise.track
    def work() -> None:
        pass  # only where the run is stored matters here

    work()
    result = wattwise.last_run()
    assert result is not None
    with RunStore.open(read_only=True) as store:  # the test's temporary default store
        assert store.get_run(result.run_id).name == "work"


def test_empty_parentheses_also_name_the_run_after_the_function() -> None:
    @wattwise.track(meters=[estimate()], **FAST)
    def step() -> str:
        return "done"

    assert step() == "done"
    result = wattwise.last_run()
    assert result is not None and result.name == "step"


def test_async_def_is_measured_over_the_awaited_body() -> None:
    @wattwise.track("fetch", meters=[estimate()], **FAST)
    async def fetch() -> str:
        await asyncio.sleep(0.1)
        return "page"

    assert inspect.iscoroutinefunction(fetch)

    async def main() -> RunResult | None:
        assert await fetch() == "page"
        return wattwise.last_run()

    result = asyncio.run(main())
    assert result is not None and result.name == "fetch"
    assert result.duration_s >= 0.1
    assert result.energy_j > 0


def test_bare_decorator_on_async_def() -> None:
    @wattwise.track
    async def nap() -> None:
        await asyncio.sleep(0.1)

    async def main() -> RunResult | None:
        await nap()
        return wattwise.last_run()

    result = asyncio.run(main())
    assert result is not None and result.name == "nap" and result.duration_s >= 0.1


def test_concurrent_tasks_each_get_their_own_run() -> None:
    @wattwise.track("job", **FAST)  # calls overlap: fresh meters for each (the default)
    async def job(seconds: float) -> RunResult | None:
        await asyncio.sleep(seconds)
        return None

    async def one(seconds: float) -> RunResult | None:
        await job(seconds)
        return wattwise.last_run()  # in this task: this task's call

    async def main() -> list[RunResult | None]:
        return list(await asyncio.gather(one(0.05), one(0.2)))

    short, long = asyncio.run(main())
    assert short is not None and long is not None and short.run_id != long.run_id
    assert 0.05 <= short.duration_s < long.duration_s and long.duration_s >= 0.2


def test_async_generator_is_measured_over_its_iteration() -> None:
    @wattwise.track("stream", meters=[estimate()], **FAST)
    async def stream() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0.04)
            yield i

    async def main() -> tuple[list[int], RunResult | None]:
        items = [i async for i in stream()]
        return items, wattwise.last_run()

    items, result = asyncio.run(main())
    assert items == [0, 1, 2]
    assert result is not None and result.duration_s >= 0.12


def test_generator_is_measured_over_its_iteration_and_an_early_stop_is_no_failure() -> None:
    clock = FakeClock()

    @wattwise.track("batches", meters=[estimate()], clock=clock, **FAST)
    def batches() -> Iterator[int]:
        for i in range(5):
            clock.advance(0.03)
            yield i

    assert list(batches()) == [0, 1, 2, 3, 4]
    full = wattwise.last_run()
    assert full is not None and full.duration_s == pytest.approx(0.15)
    gen = batches()
    assert next(gen) == 0
    gen.close()  # the consumer stops early
    early = wattwise.last_run()
    assert early is not None and early.run_id != full.run_id
    assert early.status is RunStatus.COMPLETED


def test_last_run_is_per_thread() -> None:
    @wattwise.track("threaded", **FAST)  # calls overlap: fresh meters for each (the default)
    def work(seconds: float) -> None:
        time.sleep(seconds)

    seen: dict[float, RunResult | None] = {}
    barrier = threading.Barrier(2)

    def worker(seconds: float) -> None:
        barrier.wait()
        work(seconds)
        seen[seconds] = wattwise.last_run()

    threads = [threading.Thread(target=worker, args=(s,)) for s in (0.05, 0.25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    short, long = seen[0.05], seen[0.25]
    assert short is not None and long is not None and short.run_id != long.run_id
    assert 0.05 <= short.duration_s < long.duration_s and long.duration_s >= 0.25


def test_a_failing_call_is_recorded_as_failed_and_reraised() -> None:
    @wattwise.track("boom", meters=[estimate()], **FAST)
    async def boom() -> None:
        await asyncio.sleep(0.02)
        raise ValueError("boom")

    async def main() -> RunResult | None:
        with pytest.raises(ValueError, match="boom"):
            await boom()
        return wattwise.last_run()

    result = asyncio.run(main())
    assert result is not None and result.status is RunStatus.FAILED


def test_a_decorated_call_inside_a_run_is_a_window_of_it() -> None:
    @wattwise.track
    async def phase() -> None:
        await asyncio.sleep(0.05)

    async def main() -> Tracker | Window:
        with wattwise.track("outer", meters=[estimate()], **FAST) as outer:
            await phase()
        return outer

    outer = asyncio.run(main())
    assert isinstance(outer, Tracker) and outer.result is not None
    assert [w.name for w in outer.result.windows] == ["phase"]
    assert outer.result.windows[0].duration_s >= 0.05


def test_options_are_explicit_keywords() -> None:
    params = inspect.signature(wattwise.track).parameters
    options = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    tracker_options = {
        n
        for n, p in inspect.signature(Tracker).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert options == tracker_options  # every Tracker option, and no hidden **kwargs
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    doc = inspect.getdoc(wattwise.track) or ""
    for option in options:
        assert f"{option}:" in doc, option


def test_an_option_is_passed_on_and_starts_a_separate_run(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    clock = FakeClock()
    with (
        wattwise.track("outer", meters=[estimate()], clock=clock, **FAST) as outer,
        wattwise.track(
            "inner", meters=[estimate()], store=str(store), baseline_s=0.05, clock=clock
        ) as inner,
    ):
        clock.advance(0.02)
    assert isinstance(outer, Tracker) and isinstance(inner, Tracker)
    assert inner.result is not None and inner.result.baseline_power_w is not None
    assert wattwise.last_run() == outer.result  # the last one stopped
    with RunStore.open(str(store), read_only=True) as st:
        assert [r.name for r in st.list_runs()] == ["inner"]


def test_a_bad_name_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="a name"):
        wattwise.track(42)  # type: ignore[call-overload]
