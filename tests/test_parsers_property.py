"""Property-based tests of the parsers: durations, stop specs (energy units), trace CSVs."""

from __future__ import annotations

import math
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattwise import ConfigError, DataFileError
from wattwise.carbon import load_trace, parse_duration
from wattwise.carbon._schedule import MAX_DURATION_S
from wattwise.train import parse_stop
from wattwise.train._stopping import EnergyBudget, Plateau, TargetAccuracy

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNIT_S = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}

# --- durations -----------------------------------------------------------------------------

parts = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(sorted(UNIT_S))), min_size=1, max_size=4
)


@FAST
@given(parts, st.sampled_from(["", " "]))
def test_duration_text_parses_to_the_sum_of_its_parts(
    terms: list[tuple[int, str]], sep: str
) -> None:
    text = sep.join(f"{n}{unit}" for n, unit in terms)
    total = sum(n * UNIT_S[unit] for n, unit in terms)
    if 0 < total <= MAX_DURATION_S:
        assert parse_duration(text) == total
    else:
        with pytest.raises(ConfigError, match="out of range"):
            parse_duration(text)


@FAST
@given(st.text(max_size=30))
def test_any_duration_text_is_a_bounded_number_or_one_config_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert 0 < seconds <= MAX_DURATION_S and math.isfinite(seconds)


@FAST
@given(st.floats(min_value=0.001, max_value=1e6), st.sampled_from(["h", "m", "s"]))
def test_decimal_durations(value: float, unit: str) -> None:
    text = f"{value:.3f}{unit}"
    expected = float(f"{value:.3f}") * UNIT_S[unit]
    if expected <= MAX_DURATION_S:
        assert parse_duration(text) == pytest.approx(expected)
    else:
        with pytest.raises(ConfigError, match="out of range"):
            parse_duration(text)


# --- stop specs and their energy units -----------------------------------------------------

ENERGY = {"J": 1.0, "kJ": 1e3, "MJ": 1e6, "Wh": 3600.0, "kWh": 3.6e6}


@FAST
@given(st.floats(min_value=1e-3, max_value=1e6), st.sampled_from(sorted(ENERGY)))
def test_budget_units_round_trip(value: float, unit: str) -> None:
    text = f"{value:.6g}"
    rule = parse_stop(f"budget:{text}{unit}")
    assert isinstance(rule, EnergyBudget)
    assert rule.budget_j == pytest.approx(float(text) * ENERGY[unit], rel=1e-12)


@FAST
@given(st.floats(min_value=1e-3, max_value=1e4), st.floats(min_value=1.0, max_value=2000.0))
def test_emissions_budget_is_energy_at_the_intensity(grams: float, intensity: float) -> None:
    g, i = f"{grams:.6g}", f"{intensity:.6g}"
    rule = parse_stop(f"budget:{g}gCO2e@{i}")
    assert isinstance(rule, EnergyBudget)
    assert rule.budget_j == pytest.approx(float(g) / float(i) * 3.6e6, rel=1e-12)


@FAST
@given(st.integers(1, 1000), st.floats(min_value=0, max_value=1, allow_nan=False))
def test_plateau_round_trip(patience: int, delta: float) -> None:
    rule = parse_stop(f"plateau:{patience}:{delta!r}")
    assert isinstance(rule, Plateau)
    assert (rule.patience, rule.min_delta) == (patience, delta)


@FAST
@given(st.text(max_size=40))
def test_any_stop_spec_is_a_rule_or_one_config_error(spec: str) -> None:
    try:
        rule = parse_stop(spec)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    if isinstance(rule, EnergyBudget):
        assert 0 < rule.budget_j < math.inf
    elif isinstance(rule, Plateau):
        assert rule.patience >= 1 and 0 <= rule.min_delta < math.inf
    else:
        assert isinstance(rule, TargetAccuracy) and 0 < rule.target <= 1


@pytest.mark.parametrize(
    "spec",
    [
        "budget:5gCO2e@5000",
        "budget:5gCO2e@0",
        "plateau:5:nan",
        "plateau:5:inf",
        "budget:1e400J",
        "budget:nanJ",
        "budget:5gCO2e@nan",
    ],
)
def test_non_finite_or_implausible_stop_figures_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_stop(spec)


# --- intensity traces ----------------------------------------------------------------------

T0 = datetime(2020, 3, 1, tzinfo=UTC)


def _write(text: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="wattwise-prop-"))
    path = folder / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return path


rows = st.lists(
    st.tuples(st.booleans(), st.floats(min_value=0, max_value=2000, allow_nan=False)),
    min_size=3,
    max_size=60,
)


@FAST
@given(rows)
def test_trace_round_trip_with_missing_rows_as_gaps(hours: list[tuple[bool, float]]) -> None:
    # (present, value) per hour; the first, second and last hours are always present.
    hours = [(True, hours[0][1]), (True, hours[1][1]), *hours[2:-1], (True, hours[-1][1])]
    present = [(i, v) for i, (keep, v) in enumerate(hours) if keep]
    lines = ["Time,Carbon Intensity"]
    lines += [f"{(T0 + timedelta(hours=i)).isoformat()},{v!r}" for i, v in present]
    trace = load_trace(_write("\n".join(lines) + "\n"))
    step = 3600.0
    t0 = T0.timestamp()
    # Every row's value is read back exactly, at its own hour.
    for i, v in present:
        assert trace.value_at(t0 + i * step) == v
    # Every missing hour is in a gap, and nothing else is (the median step is 1 h as long
    # as at least half the steps are single hours; otherwise just check consistency).
    missing = [i for i, (keep, _) in enumerate(hours) if not keep]
    if trace.step_s == step:
        in_gap = [
            i
            for i in range(len(hours))
            if float(trace.missing_s(t0 + i * step, t0 + (i + 1) * step))
        ]
        assert in_gap == missing
        assert trace.end_s == t0 + len(hours) * step
    total_missing = sum(b - a for a, b in trace.gaps_s)
    assert float(trace.missing_s(trace.times_s[0], trace.end_s)) == pytest.approx(total_missing)
    assert np.all(np.isnan(trace.values_g_per_kwh) | (trace.values_g_per_kwh >= 0))


@FAST
@given(
    st.integers(3, 20),
    st.integers(1, 19),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["time", "value"]),
)
def test_garbage_is_refused_naming_file_and_line(
    n: int, where: int, junk: str, column: str
) -> None:
    where = where % n
    lines = ["Time,Carbon Intensity"]
    for i in range(n):
        stamp, value = (T0 + timedelta(hours=i)).isoformat(), "100"
        if i == where:
            stamp, value = (junk, value) if column == "time" else (stamp, junk)
        lines.append(
            f'"{stamp.replace(chr(34), "")}",{value}' if column == "time" else f"{stamp},{value}"
        )
    path = _write("\n".join(lines) + "\n")
    try:
        trace = load_trace(path)
    except DataFileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}:") and "\n" not in message
        line = message[len(str(path)) + 1 :].split(":", 1)[0]
        assert line.isdigit() and 1 <= int(line) <= n + 1
    else:
        # The junk happened to be a valid timestamp after the previous one, or a number.
        assert trace.times_s.size >= 2


@FAST
@given(st.integers(3, 20), st.integers(1, 18), st.booleans())
def test_duplicate_or_unsorted_hours_name_the_line(n: int, where: int, duplicate: bool) -> None:
    where = 1 + where % (n - 1)
    hours = list(range(n))
    hours[where] = hours[where - 1] if duplicate else hours[where - 1] - 1
    lines = ["Time,Carbon Intensity"]
    lines += [f"{(T0 + timedelta(hours=h)).isoformat()},1" for h in hours]
    path = _write("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=rf"^{re.escape(str(path))}:{where + 2}: "):
        load_trace(path)
