"""The measurement protocol: its spec, order, cool-down, windows, the lever context's
tracker rule, ``--meters`` specs and the study session, on a real tracker and SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattwise._errors import ConfigError, DataFileError
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.protocol import (
    LeverContext,
    Protocol,
    measure,
    meters_from_spec,
    schedule,
    study_session,
    tracking,
    warm_up,
)
from wattwise.store import RunStore

CPU = Component(
    "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "cpu-model"), relative_uncertainty=0.2
)


def _meters() -> list[ReplayMeter]:
    return [ReplayMeter([CPU], [TraceInterval("cpu", 0.0, 36000.0, 20.0 * 36000.0)])]


def test_round_robin_and_blocked_orders() -> None:
    rr = list(schedule(["a", "b"], Protocol(repeats=2)))
    assert rr == [(1, "a"), (1, "b"), (2, "a"), (2, "b")]
    blocked = list(schedule(["a", "b"], Protocol(repeats=2, order="blocked")))
    assert blocked == [(1, "a"), (2, "a"), (1, "b"), (2, "b")]


def test_cool_down_between_repeats_not_before_the_first() -> None:
    slept: list[float] = []
    items = list(schedule(["a", "b"], Protocol(repeats=2, cooldown_s=3.0), sleep=slept.append))
    assert len(items) == 4
    assert slept == [3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"repeats": 0},
        {"warmup": -1},
        {"min_calls": 0},
        {"min_calls": 3, "max_calls": 2},
        {"min_time_s": float("nan")},
        {"cooldown_s": float("inf")},
        {"order": "random"},
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Protocol(**kwargs)  # type: ignore[arg-type]


def test_same_label_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="same label"):
        list(schedule(["a", "a"], Protocol()))


def test_measure_warms_up_once_and_windows_every_repeat() -> None:
    calls = {"a": 0, "b": 0}
    warm = {"a": 0}

    def subject(label: str) -> object:
        def call() -> None:
            calls[label] += 1

        return call

    proto = Protocol(repeats=3, warmup=4, min_time_s=0.0, min_calls=5, max_calls=5)
    ctx = LeverContext(meters=_meters, store=False)
    with tracking("t", ctx) as t:
        out = measure(
            {"a": subject("a"), "b": subject("b")},
            proto,
            tracker=t,
            items_per_call={"a": 2, "b": 1},
            warm_ups={"a": lambda: warm.__setitem__("a", warm["a"] + 1)},
        )
    assert t.result is not None
    assert [w.name for w in t.result.windows] == ["a #1", "b #1", "a #2", "b #2", "a #3", "b #3"]
    assert warm["a"] == 4  # its own warm-up, once
    assert calls == {"a": 15, "b": 4 + 15}  # b warms up with itself
    a = out["a"]
    assert [m.calls for m in a.measurements] == [5, 5, 5]
    assert a.total.calls == 15 and a.total.items_per_call == 2
    assert all(m.energy_j > 0 and m.source == "estimated (cpu-model)" for m in a.measurements)
    per_item = sorted(m.energy_j / 10 for m in a.measurements)  # 5 calls x 2 items
    assert a.energy_per_item_j.median == pytest.approx(per_item[1])
    assert a.total.energy_j == pytest.approx(sum(m.energy_j for m in a.measurements))


def test_measure_needs_a_running_tracker() -> None:
    ctx = LeverContext(meters=_meters, store=False)
    with pytest.raises(ConfigError, match="running tracker"):
        measure({"a": lambda: None}, Protocol(), tracker=ctx.tracker("t"))


def test_tracking_reuses_a_running_tracker_and_owns_a_new_one() -> None:
    ctx = LeverContext(meters=_meters, store=False)
    outer = ctx.tracker("outer")
    with outer:
        with tracking("inner", ctx, outer) as t:
            assert t is outer
        assert outer.running  # the caller's: not stopped
    with tracking("own", ctx) as own:
        assert own.running
    assert not own.running


def test_context_refuses_a_bad_scope_and_store() -> None:
    with pytest.raises(ConfigError, match="scope"):
        LeverContext(scope="galaxy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="store"):
        LeverContext(store=42)  # type: ignore[arg-type]


def test_meters_from_spec(tmp_path: Path) -> None:
    assert meters_from_spec("auto") is None
    trace = tmp_path / "t.csv"
    trace.write_text(
        "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
        "cpu,cpu,estimated,cpu-model,true,0,10,100\n"
    )
    factory = meters_from_spec(f"replay:{trace}")
    assert factory is not None
    first, second = factory(), factory()
    assert first[0] is not second[0]  # fresh meters for every run
    assert isinstance(first[0], ReplayMeter) and first[0].loop
    with pytest.raises(DataFileError):
        meters_from_spec(f"replay:{tmp_path / 'missing.csv'}")
    with pytest.raises(ConfigError, match="unknown meters"):
        meters_from_spec("rapl-please")


def test_study_session_links_runs_and_results_in_a_real_store(tmp_path: Path) -> None:
    url = str(tmp_path / "runs.db")
    progress: list[tuple[int, int, str]] = []
    ctx = LeverContext(meters=_meters, store=url, progress=lambda *a: progress.append(a))
    with study_session(ctx, kind="layers", name="n", params={"p": 1}) as s:
        assert s.stored
        s.begin(1)
        t = s.tracker("run #1")
        with t:
            pass
        s.link(t.run_id, "run #1", {"repeat": 1})
        s.run_done("run #1", "estimated (cpu-model)")
        s.finish({"ok": True})
    assert progress == [(0, 1, "warm-up"), (1, 1, "run #1")]
    with RunStore.open(url, read_only=True) as store:
        study = store.get_study(s.study_id)
        assert study.kind == "layers" and study.results == {"ok": True}
        assert [r.run_id for r in study.runs] == [t.run_id]


def test_study_session_without_a_store_records_nothing() -> None:
    with study_session(LeverContext(store=False), kind="k", name="n", params={}) as s:
        assert not s.stored
        s.link("nope", "x")  # nothing to link to: no error
        s.finish({"x": 1})


def test_context_of_takes_a_scope_as_text() -> None:
    assert LeverContext.of(scope="process").scope.value == "process"
    with pytest.raises(ConfigError, match="scope must be machine or process"):
        LeverContext.of(scope="nope")


def test_warm_up_calls_the_protocols_warm_up_count() -> None:
    calls: list[int] = []
    warm_up(lambda: calls.append(1), Protocol(warmup=3))
    assert calls == [1, 1, 1]
    warm_up(lambda: calls.append(2), Protocol(warmup=0))
    assert calls == [1, 1, 1]
