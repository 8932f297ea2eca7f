"""Carbon-aware scheduling: exact optima checked against brute force, errors, JSON, CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from wattwise import ConfigError
from wattwise.carbon import (
    UNITS_GRAMS,
    UNITS_RELATIVE,
    IntensityTrace,
    parse_duration,
    parse_instant,
    plan_contiguous,
    plan_interruptible,
    schedule_job,
)
from wattwise.cli._schedule import schedule

T0 = datetime(2020, 6, 1, tzinfo=UTC)
HOUR = 3600.0


def _trace(
    values: list[float] | np.ndarray, step_s: float = HOUR, zone: str = "Z"
) -> IntensityTrace:
    start = T0.timestamp()
    times = start + step_s * np.arange(len(values))
    return IntensityTrace(
        zone=zone,
        times_s=times,
        values_g_per_kwh=np.asarray(values, dtype=np.float64),
        end_s=float(times[-1] + step_s),
        source="unit test",
    )


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_contiguous_finds_the_cheapest_window_and_the_baseline() -> None:
    trace = _trace([5, 4, 3, 1, 1, 6, 2, 2])
    plan = plan_contiguous(trace, start=_at(0), deadline=_at(8), duration_s=2 * HOUR)
    assert (plan.start, plan.end) == (_at(3), _at(5))
    assert plan.emissions == pytest.approx(2.0)  # (1 + 1) (g/kWh) × h
    assert plan.baseline_emissions == pytest.approx(9.0)
    assert plan.saving_ratio == pytest.approx(1 - 2 / 9)
    assert plan.units == UNITS_RELATIVE
    assert plan.slots == ((_at(3), _at(5)),)


def test_contiguous_optimum_is_exact_off_the_grid() -> None:
    # 90 minutes: the best covers the 1 and half of a 2, not whole hours
    trace = _trace([9, 9, 2, 1, 9, 9])
    plan = plan_contiguous(trace, start=_at(0.25), deadline=_at(5.75), duration_s=1.5 * HOUR)
    assert plan.start == _at(2.5)
    assert plan.emissions == pytest.approx(0.5 * 2 + 1 * 1)
    assert plan.baseline_emissions == pytest.approx(1.5 * 9)


def test_contiguous_matches_brute_force_on_random_traces() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        values = rng.uniform(0, 500, size=24)
        trace = _trace(values, step_s=1800.0)
        start_h, duration_h = float(rng.uniform(0, 3)), float(rng.choice([0.5, 1, 2.25, 4]))
        deadline_h = start_h + duration_h + float(rng.uniform(0, 7))
        plan = plan_contiguous(
            trace, start=_at(start_h), deadline=_at(deadline_h), duration_s=duration_h * HOUR
        )
        grid = np.linspace(start_h, deadline_h - duration_h, 4001) * HOUR + T0.timestamp()
        costs = trace.integral(grid + duration_h * HOUR) - trace.integral(grid)
        # never worse than any of 4001 evenly spaced starts
        assert plan.emissions <= costs.min() / HOUR * (1 + 1e-9)
        assert plan.emissions == pytest.approx(
            float(trace.integral(plan.end.timestamp()) - trace.integral(plan.start.timestamp()))
            / HOUR
        )


def test_ties_pick_the_earliest_start() -> None:
    plan = plan_contiguous(_trace([3, 3, 3, 3]), start=_at(0), deadline=_at(4), duration_s=HOUR)
    assert plan.start == _at(0) and plan.saving_ratio == 0.0


def test_power_or_energy_give_grams() -> None:
    trace = _trace([100.0, 300.0])
    plan = plan_contiguous(trace, start=_at(0), deadline=_at(2), duration_s=HOUR, power_w=500)
    assert plan.units == UNITS_GRAMS
    assert plan.emissions == pytest.approx(0.5 * 100)  # 0.5 kWh at 100 g/kWh
    same = plan_contiguous(trace, start=_at(0), deadline=_at(2), duration_s=HOUR, energy_j=1.8e6)
    assert same.emissions == pytest.approx(plan.emissions)
    with pytest.raises(ConfigError, match="not both"):
        plan_contiguous(
            trace, start=_at(0), deadline=_at(2), duration_s=HOUR, power_w=1, energy_j=1
        )


def test_interruptible_without_min_chunk_takes_the_cheapest_slots() -> None:
    trace = _trace([5, 1, 6, 2, 7, 1, 8, 3])
    plan = plan_interruptible(trace, start=_at(0), deadline=_at(8), duration_s=3 * HOUR)
    assert plan.slots == ((_at(1), _at(2)), (_at(3), _at(4)), (_at(5), _at(6)))
    assert plan.emissions == pytest.approx(4.0)
    assert (plan.start, plan.end) == (_at(1), _at(6))
    assert plan.baseline_emissions == pytest.approx(12.0)


def _brute_force(costs: list[float], k: int, m: int) -> float:
    best = float("inf")
    for chosen in itertools.combinations(range(len(costs)), k):
        mask = np.zeros(len(costs), dtype=bool)
        mask[list(chosen)] = True
        runs = np.diff(np.concatenate(([0], mask.astype(int), [0])))
        lengths = np.flatnonzero(runs == -1) - np.flatnonzero(runs == 1)
        if lengths.min() >= m:
            best = min(best, sum(costs[i] for i in chosen))
    return best


def test_min_chunk_programme_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(4, 11))
        k = int(rng.integers(1, n + 1))
        m = int(rng.integers(1, k + 1))
        values = [float(v) for v in rng.integers(0, 20, size=n)]
        plan = plan_interruptible(
            _trace(values),
            start=_at(0),
            deadline=_at(n),
            duration_s=k * HOUR,
            min_chunk_s=m * HOUR,
        )
        expected = _brute_force(values, k, m)
        assert min(expected, plan.baseline_emissions) == pytest.approx(plan.emissions)
        assert all((b - a) >= timedelta(hours=m) for a, b in plan.slots)
        assert sum((b - a for a, b in plan.slots), timedelta()) == timedelta(hours=k)


def test_min_chunk_longer_than_the_job_runs_it_in_one_piece() -> None:
    trace = _trace([5, 1, 6, 1, 7, 9])  # cheapest 2 slots apart (1, 1); together: 5 + 1
    plan = plan_interruptible(
        trace, start=_at(0), deadline=_at(6), duration_s=2 * HOUR, min_chunk_s=3 * HOUR
    )
    assert plan.slots == ((_at(0), _at(2)),) and plan.emissions == pytest.approx(6.0)


def test_interruptible_uses_whole_slots_and_checks_the_duration() -> None:
    trace = _trace([1.0] * 8, step_s=1800.0)
    with pytest.raises(ConfigError, match="not a whole number of the trace's 1800 s slots"):
        plan_interruptible(trace, start=_at(0), deadline=_at(4), duration_s=2000)
    with pytest.raises(ConfigError, match="holds 1 whole 1800 s slots"):
        plan_interruptible(trace, start=_at(0.25), deadline=_at(1.25), duration_s=HOUR)


def test_interruptible_never_worse_than_starting_at_once() -> None:
    # start inside a slot: the partial slot is cheap, every whole slot is dear
    trace = _trace([1, 50, 50, 50])
    plan = plan_interruptible(trace, start=_at(0.5), deadline=_at(3), duration_s=HOUR)
    assert plan.emissions == pytest.approx(plan.baseline_emissions)
    assert plan.slots == ((_at(0.5), _at(1.5)),)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": _at(2), "deadline": _at(3), "duration_s": 2 * HOUR}, "is before start"),
        ({"start": _at(-1), "deadline": _at(3), "duration_s": HOUR}, "is not inside it"),
        ({"start": _at(0), "deadline": _at(30), "duration_s": HOUR}, "is not inside it"),
        ({"start": _at(0), "deadline": _at(3), "duration_s": -5}, "positive"),
    ],
)
def test_window_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_contiguous(_trace([1, 2, 3, 4]), **kwargs)  # type: ignore[arg-type]


def test_several_zones_best_zone_each_zones_best_and_the_home_baseline() -> None:
    home = _trace([300, 200, 100, 300], zone="DE")
    away = _trace([60, 50, 55, 70], zone="FR")
    result = schedule_job([home, away], start=_at(0), deadline=_at(4), duration_s=HOUR)
    assert result.best.zone == "FR" and result.best.start == _at(1)
    assert [p.zone for p in result.plans] == ["DE", "FR"]
    assert result.plans[0].start == _at(2)
    assert result.saving_ratio == pytest.approx(1 - 50 / 300)
    data = result.to_dict()
    assert set(data) >= {
        "zone",
        "best_start",
        "end",
        "emissions_g",
        "baseline_emissions_g",
        "saving_ratio",
        "slots",
        "units",
        "zones",
    }
    assert data["baseline_zone"] == "DE" and data["baseline_emissions_g"] == pytest.approx(300)
    assert data["slots"] == [[_at(1).isoformat(), _at(2).isoformat()]]
    assert data["units"] == UNITS_RELATIVE
    assert [z["zone"] for z in data["zones"]] == ["DE", "FR"]
    json.dumps(data)
    with pytest.raises(ConfigError, match="interruptible"):
        schedule_job([home], start=_at(0), deadline=_at(4), duration_s=HOUR, min_chunk_s=HOUR)
    with pytest.raises(ConfigError, match="at least one"):
        schedule_job([], start=_at(0), deadline=_at(4), duration_s=HOUR)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4h", 14400),
        ("30m", 1800),
        ("1h30m", 5400),
        ("90s", 90),
        ("1.5h", 5400),
        ("2d", 172800),
        ("45min", 2700),
        (" 1h 15m ", 4500),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["4", "h", "4x", "-1h", "1h and a bit", ""])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="bad duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0h", "0s", "367d", "99999999h", "1" + "0" * 400 + "s"])
def test_parse_duration_rejects_out_of_range_with_the_range(text: str) -> None:
    with pytest.raises(ConfigError, match=r"out of range: .*longer than 0 s and at most 366 d"):
        parse_duration(text)


def test_parse_duration_bounds_are_the_callers() -> None:
    assert parse_duration("1d", max_s=86400.0) == 86400.0
    with pytest.raises(ConfigError, match=r"'2d' for --baseline is out of range: .*1 d"):
        parse_duration("2d", max_s=86400.0, what="--baseline")


def test_parse_instant_naive_is_utc_or_the_given_zone() -> None:
    assert parse_instant("2020-06-01T08:00") == datetime(2020, 6, 1, 8, tzinfo=UTC)
    assert parse_instant("2020-06-01T08:00", "Europe/Berlin") == datetime(2020, 6, 1, 6, tzinfo=UTC)
    assert parse_instant("2020-06-01T08:00+01:00", "Asia/Tokyo").hour == 7
    with pytest.raises(ConfigError, match="DST gap"):
        parse_instant("2020-03-29T02:30", "Europe/Berlin")
    with pytest.raises(ConfigError, match="bad time"):
        parse_instant("tomorrow")


# --- the CLI -------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("schedule")(schedule)
    app.command("noop")(lambda: None)  # a second command keeps "schedule" a subcommand
    return app


def _csv(tmp_path: Path, name: str, values: list[float]) -> Path:
    lines = ["Time,Carbon Intensity"]
    lines += [
        f"{(T0 + timedelta(hours=i)).strftime('%Y-%m-%d %H:%M:%S')},{v}"
        for i, v in enumerate(values)
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_json_single_trace_in_grams(tmp_path: Path) -> None:
    path = _csv(tmp_path, "de.csv", [300, 200, 100, 300, 400, 400])
    args = [
        "schedule",
        "--trace",
        f"DE={path}",
        "--duration",
        "2h",
        "--start",
        "2020-06-01T00:00",
        "--deadline",
        "2020-06-01T06:00",
        "--power-w",
        "1000",
        "--json",
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["zone"] == "DE"
    assert data["best_start"] == "2020-06-01T01:00:00+00:00"
    assert data["emissions_g"] == pytest.approx(300.0)  # 1 kWh at 200 + 1 kWh at 100
    assert data["baseline_emissions_g"] == pytest.approx(500.0)
    assert data["units"] == "gCO2e"


def test_cli_interruptible_several_zones_human_output(tmp_path: Path) -> None:
    de = _csv(tmp_path, "de.csv", [300, 100, 300, 100, 300, 300])
    fr = _csv(tmp_path, "fr.csv", [50, 60, 50, 60, 70, 70])
    args = [
        "schedule",
        "--trace",
        f"DE={de}",
        "--trace",
        f"FR={fr}",
        "--duration",
        "2h",
        "--start",
        "2020-06-01T02:00+02:00",
        "--deadline",
        "2020-06-01T06:00",
        "--interruptible",
        "--min-chunk",
        "1h",
        "--tz",
        "Europe/Berlin",
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "Best: FR" in result.stdout
    assert "Relative units" in result.stdout
    assert "DE" in result.stdout and "saving" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--duration", "4h", "--deadline", "2020-06-01T03:00"], "is before start"),
        (["--duration", "4q", "--deadline", "2020-06-01T05:00"], "bad duration '4q' for"),
        (["--duration", "1h", "--deadline", "2020-07-01T00:00"], "is not inside it"),
        (
            ["--duration", "1h", "--deadline", "2020-06-01T05:00", "--min-chunk", "1h"],
            "--min-chunk needs --interruptible",
        ),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    path = _csv(tmp_path, "de.csv", [1, 2, 3, 4, 5, 6])
    args = ["schedule", "--trace", str(path), "--start", "2020-06-01T00:00", *extra]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_bad_trace_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Time,Carbon Intensity\n2020-06-01 00:00,1\n2020-06-01 01:00,lots\n")
    args = [
        "schedule",
        "--trace",
        str(path),
        "--duration",
        "1h",
        "--start",
        "2020-06-01T00:00",
        "--deadline",
        "2020-06-01T02:00",
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert "bad.csv:3: bad intensity 'lots'" in result.stderr


# --- gaps in a trace -----------------------------------------------------------------------


def _gap_trace() -> IntensityTrace:
    """Hours 0-2 then a 3 h gap (3-6), then hours 6-7; the gap looks cheapest if filled."""
    values = [300.0, 300.0, 50.0, np.nan, 300.0, 300.0]
    times = T0.timestamp() + HOUR * np.array([0, 1, 2, 3, 6, 7], dtype=np.float64)
    return IntensityTrace("Z", times, np.array(values), float(times[-1] + HOUR), "unit test")


def test_contiguous_never_runs_through_a_gap_and_lists_it() -> None:
    plan = plan_contiguous(_gap_trace(), start=_at(0), deadline=_at(8), duration_s=2 * HOUR)
    assert plan.start == _at(1) and plan.emissions == pytest.approx(300 + 50)
    assert plan.gaps == ((_at(3), _at(6)),)
    for a, b in plan.slots:
        assert b <= _at(3) or a >= _at(6)


def test_interruptible_skips_gap_slots_and_says_when_too_few_remain() -> None:
    plan = plan_interruptible(_gap_trace(), start=_at(0), deadline=_at(8), duration_s=2 * HOUR)
    assert plan.slots == ((_at(0), _at(1)), (_at(2), _at(3)))
    assert plan.gaps == ((_at(3), _at(6)),)
    # An irregular trace, regularised to hours: the half-hour gap at 3.5 h voids slot 3-4 h,
    # though the baseline (1.5-3.5 h) has data.
    times = T0.timestamp() + HOUR * np.array([0, 1, 2, 3, 3.5])
    odd = IntensityTrace("Z", times, np.array([1.0, 1, 1, 1, np.nan]), _at(4).timestamp(), "t")
    with pytest.raises(ConfigError, match=r"holds 1 whole 3600 s slots with data .* needs 2"):
        plan_interruptible(odd, start=_at(1.5), deadline=_at(4), duration_s=2 * HOUR)


def test_a_baseline_through_a_gap_is_refused_with_the_gap_named() -> None:
    named = r"no data for 2020-06-01T03:00:00\+00:00 to 06:00 \(3 h\)"
    with pytest.raises(ConfigError, match=named):
        plan_contiguous(_gap_trace(), start=_at(2), deadline=_at(8), duration_s=2 * HOUR)
    with pytest.raises(ConfigError, match=r"--start 2020-06-01T06:00\+00:00"):
        plan_interruptible(_gap_trace(), start=_at(2), deadline=_at(8), duration_s=2 * HOUR)


def test_min_chunk_programme_never_picks_a_gap_slot() -> None:
    trace = _trace([9.0, 9.0, 9.0, 9.0, 1.0, np.nan, 1.0, 1.0, 9.0, 1.0, 1.0])
    plan = plan_interruptible(
        trace, start=_at(0), deadline=_at(11), duration_s=4 * HOUR, min_chunk_s=2 * HOUR
    )
    # Slot 4 is cheap but its only partner with data is slot 3 (9): the gap breaks runs.
    assert plan.slots == ((_at(6), _at(8)), (_at(9), _at(11)))
    assert plan.gaps == ((_at(5), _at(6)),)
    loose = plan_interruptible(trace, start=_at(0), deadline=_at(11), duration_s=4 * HOUR)
    assert (_at(4), _at(5)) in loose.slots and (_at(5), _at(6)) not in loose.slots


def test_cli_schedule_with_a_gap_end_to_end(tmp_path: Path, child_env: dict[str, str]) -> None:
    path = tmp_path / "gap.csv"
    rows = [(0, 300), (1, 300), (2, 50), (6, 300), (7, 300)]
    path.write_text(
        "Time,Carbon Intensity\n" + "".join(f"2020-06-01 {h:02d}:00,{v}\n" for h, v in rows)
    )
    base = [sys.executable, "-m", "wattwise", "schedule", "--trace", f"DE={path}"]
    window = ["--duration", "2h", "--start", "2020-06-01T00:00", "--deadline", "2020-06-01T08:00"]
    proc = subprocess.run([*base, *window], env=child_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "start 2020-06-01 01:00 UTC" in proc.stdout  # not 02:00, inside the hole
    assert "saving 41.7%" in proc.stdout
    assert "No data in trace DE for 2020-06-01 03:00 UTC–2020-06-01 06:00 UTC (3 h" in proc.stdout
    proc = subprocess.run([*base, *window, "--json"], env=child_env, capture_output=True, text=True)
    data = json.loads(proc.stdout)
    assert data["gaps"] == [
        {"zone": "DE", "start": "2020-06-01T03:00:00+00:00", "end": "2020-06-01T06:00:00+00:00"}
    ]
    late = ["--duration", "2h", "--start", "2020-06-01T02:00", "--deadline", "2020-06-01T08:00"]
    proc = subprocess.run([*base, *late], env=child_env, capture_output=True, text=True)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: trace DE")
    assert "the baseline (starting at once" in errors[0] and "Traceback" not in proc.stderr
