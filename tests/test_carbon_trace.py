"""Intensity traces: both CSV layouts, Parquet, time zones and DST, resampling, bad files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from wattwise import ConfigError, DataFileError
from wattwise.carbon import IntensityTrace, load_trace

SHARED_DE = Path(__file__).resolve().parents[2] / "shared" / "data" / "carbon" / "hourly"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, UTC).isoformat()


def test_two_column_layout_naive_times_are_utc(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "de.csv",
        "Time,Carbon Intensity\n2020-01-01 00:00:00,100\n2020-01-01 00:30:00,200\n"
        "2020-01-01 01:00:00,300\n",
    )
    trace = load_trace(path)
    assert trace.zone == "de"
    assert _iso(trace.times_s[0]) == "2020-01-01T00:00:00+00:00"
    assert trace.step_s == 1800.0
    assert trace.end == datetime(2020, 1, 1, 1, 30, tzinfo=UTC)
    assert trace.source == "de.csv (Carbon Intensity)"


def test_electricity_maps_export_prefers_lca_and_reads_zone(tmp_path: Path) -> None:
    text = (
        "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
        "Data Source,Data Estimated,Data Estimation Method\n"
        "2023-01-01 00:00:00,Germany,Germany,DE,300.5,350.5,40,38,entsoe.eu,false,\n"
        "2023-01-01 01:00:00,Germany,Germany,DE,310.0,360.0,40,38,entsoe.eu,false,\n"
    )
    path = _write(tmp_path, "DE_2023_hourly.csv", "\ufeff" + text)  # exports may carry a BOM
    lca = load_trace(path, tz="Europe/Berlin")  # the column says UTC: tz does not apply
    assert lca.zone == "DE"
    assert list(lca.values_g_per_kwh) == [350.5, 360.0]
    assert _iso(lca.times_s[0]) == "2023-01-01T00:00:00+00:00"
    assert "(LCA)" in lca.source
    direct = load_trace(path, basis="direct", zone="DE-direct")
    assert list(direct.values_g_per_kwh) == [300.5, 310.0]
    assert direct.zone == "DE-direct"


def test_older_export_header_life_cycle(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "fr.csv",
        "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
        "Carbon Intensity gCO₂eq/kWh (life cycle assessment)\n"
        "2021-01-01T00:00:00.000Z,FR,20,50\n2021-01-01T01:00:00.000Z,FR,21,51\n",
    )
    trace = load_trace(path)
    assert list(trace.values_g_per_kwh) == [50.0, 51.0]


def test_timezone_naive_times_local_with_autumn_repeat(tmp_path: Path) -> None:
    # 2020-10-25 in Berlin: 02:00-03:00 happens twice (CEST then CET).
    # Half-hourly throughout (a longer step would be a gap, see test_missing_rows_are_gaps).
    rows = ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "02:00", "02:30", "03:00"]
    body = "".join(f"2020-10-25 {r}:00,{i}\n" for i, r in enumerate(rows))
    trace = load_trace(
        _write(tmp_path, "b.csv", "Time,Carbon Intensity\n" + body), tz="Europe/Berlin"
    )
    utc = [_iso(t)[11:16] for t in trace.times_s]
    assert utc == ["22:00", "22:30", "23:00", "23:30", "00:00", "00:30", "01:00", "01:30", "02:00"]
    assert trace.gaps_s == ()


def test_timezone_spring_gap_is_an_error_naming_the_line(tmp_path: Path) -> None:
    body = "Time,Carbon Intensity\n2020-03-29 01:00,1\n2020-03-29 02:00,2\n2020-03-29 03:00,3\n"
    path = _write(tmp_path, "gap.csv", body)
    with pytest.raises(DataFileError, match=r"gap\.csv:3: local time .* does not exist"):
        load_trace(path, tz="Europe/Berlin")
    assert load_trace(path).times_s.size == 3  # as UTC it is fine


def test_aware_timestamps_are_converted_to_utc(tmp_path: Path) -> None:
    body = "Time,Carbon Intensity\n2020-06-01T02:00+02:00,1\n2020-06-01T03:00+02:00,2\n"
    trace = load_trace(_write(tmp_path, "a.csv", body), tz="America/New_York")
    assert _iso(trace.times_s[0]) == "2020-06-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", r":1: the file is empty"),
        ("When,Value\n2020-01-01,1\n", r":1: columns .* are not a known trace layout"),
        ("Time,Carbon Intensity\n2020-01-01 00:00,1\nyesterday,2\n", r":3: bad timestamp"),
        ("Time,Carbon Intensity\n2020-01-01 00:00,1\n2020-01-01 01:00,x\n", r":3: bad intensity"),
        ("Time,Carbon Intensity\n2020-01-01 00:00,1\n2020-01-01 01:00,-5\n", r":3: intensity"),
        (
            "Time,Carbon Intensity\n2020-01-01 00:00,1\n2020-01-01 01:00,2500\n",
            r":3: intensity '2500' is not plausible: grids lie between 0 and 2000",
        ),
        (
            "Time,Carbon Intensity\n2020-01-01 01:00,1\n2020-01-01 00:00,2\n",
            r":3: time .* does not come after",
        ),
        ("Time,Carbon Intensity\n2020-01-01 01:00,1\n", r": a trace needs at least 2 rows"),
        ("Time,Carbon Intensity\n2020-01-01 01:00,1\n2020-01-01 02:00\n", r":3: expected 2"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, "bad.csv", body)
    with pytest.raises(DataFileError, match="bad.csv" + message):
        load_trace(path)


def test_missing_file_unknown_tz_and_basis(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such trace file"):
        load_trace(tmp_path / "nope.csv")
    path = _write(tmp_path, "t.csv", "Time,Carbon Intensity\n2020-01-01,1\n2020-01-02,2\n")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_trace(path, tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="basis"):
        load_trace(path, basis="marginal")


def test_resample_preserves_integrals_and_aligns_to_the_epoch() -> None:
    start = datetime(2020, 1, 1, 0, 10, tzinfo=UTC).timestamp()
    times = start + np.array([0.0, 900.0, 1800.0, 4500.0])  # irregular steps
    trace = IntensityTrace("Z", times, np.array([100.0, 200.0, 300.0, 400.0]), start + 6600, "t")
    hourly = trace.resample(3600)
    assert _iso(hourly.times_s[0]) == "2020-01-01T01:00:00+00:00"  # first whole hour
    assert hourly.times_s.size == 1  # 01:00-02:00; 02:00-02:40 is not covered whole
    # 01:00-01:25 at 300 (until 00:10+75min), 01:25-02:00 at 400
    assert hourly.values_g_per_kwh[0] == pytest.approx((25 * 300 + 35 * 400) / 60)
    a, b = hourly.times_s[0], hourly.end_s
    assert float(trace.integral(b) - trace.integral(a)) == pytest.approx(
        float(hourly.integral(b) - hourly.integral(a))
    )
    with pytest.raises(ConfigError):
        trace.resample(86400)


def test_parquet_with_pyarrow(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "Time": [datetime(2020, 1, 1, 0), datetime(2020, 1, 1, 1), datetime(2020, 1, 1, 2)],
            "Carbon Intensity": [10.0, 20.0, 30.0],
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    trace = load_trace(path, zone="PQ")
    assert list(trace.values_g_per_kwh) == [10.0, 20.0, 30.0]
    assert _iso(trace.times_s[0]) == "2020-01-01T00:00:00+00:00"
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataFileError, match=r"broken\.parquet"):
        load_trace(tmp_path / "broken.parquet")


@pytest.mark.skipif(not SHARED_DE.is_dir(), reason="../shared/data/carbon/hourly is absent")
def test_the_lets_wait_awhile_traces_load_as_utc() -> None:
    de = load_trace(SHARED_DE / "de_2020_ci.csv", zone="DE")
    fr = load_trace(SHARED_DE / "fr_2020_ci.csv", zone="FR")
    assert (de.step_s, fr.step_s) == (900.0, 1800.0)
    assert de.start == datetime(2019, 12, 20, tzinfo=UTC)
    # Two quarter-hours are missing in December 2020: gaps, so the 15 min grid stays regular.
    assert de.regular() is de
    gap = datetime(2020, 12, 19, 23, 15, tzinfo=UTC).timestamp()
    assert de.gaps_s == ((gap, gap + 900), (gap + 1800, gap + 2700))
    assert fr.regular() is fr


def test_missing_rows_are_gaps_not_forward_filled(tmp_path: Path) -> None:
    body = "Time,Carbon Intensity\n" + "".join(
        f"2020-06-01 {h:02d}:00,{v}\n" for h, v in [(0, 300), (1, 300), (2, 50), (6, 300)]
    )
    trace = load_trace(_write(tmp_path, "gap.csv", body))
    t0 = datetime(2020, 6, 1, tzinfo=UTC).timestamp()
    assert trace.gaps_s == ((t0 + 3 * 3600, t0 + 6 * 3600),)
    assert trace.value_at(t0 + 2.5 * 3600) == 50.0  # the row before the gap holds one step
    with pytest.raises(ConfigError, match="has no data at 2020-06-01T04:00:00"):
        trace.value_at(t0 + 4 * 3600)
    assert float(trace.missing_s(t0, t0 + 7 * 3600)) == 3 * 3600
    assert float(trace.missing_s(t0, t0 + 3 * 3600)) == 0.0
    # Resampled steps that touch the gap have no data either.
    coarse = trace.resample(7200.0)
    assert coarse.gaps_s == ((t0 + 2 * 3600, t0 + 6 * 3600),)


def test_a_trace_of_nothing_but_gaps_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one step with data"):
        IntensityTrace("Z", np.array([0.0, 1.0]), np.array([np.nan, np.nan]), 2.0, "test")
    with pytest.raises(ConfigError, match="finite and >= 0"):
        IntensityTrace("Z", np.array([0.0, 1.0]), np.array([1.0, np.inf]), 2.0, "test")


def test_a_directory_or_device_is_not_a_trace(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="is a directory, not a trace file"):
        load_trace(tmp_path)
    with pytest.raises(DataFileError, match="not a regular file"):
        load_trace("/dev/null")


def test_a_quoted_field_spanning_lines_is_reported_at_its_first_line(tmp_path: Path) -> None:
    body = 'Time,Carbon Intensity\n2020-01-01 00:00,1\n2020-01-01 01:00,"2\n2020-01-01 02:00,3\n'
    with pytest.raises(DataFileError, match=r"q.csv:3: bad intensity") as info:
        load_trace(_write(tmp_path, "q.csv", body))
    assert "\n" not in str(info.value)
