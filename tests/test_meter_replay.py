"""The replay meter: contract, CSV loading, looping and recorded gaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattwise._errors import DataFileError
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.testing._meter_contract import MeterContract, MeterEnv

GPU = Component("gpu:0", ComponentKind.GPU, Source(Method.MEASURED, "nvml-energy-counter"))


class TestReplayContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> MeterEnv:
        # 100 W for 2 s, then 50 W: piecewise constant power, so energies are exact.
        meter = ReplayMeter(
            [GPU],
            [TraceInterval("gpu:0", 0.0, 2.0, 200.0), TraceInterval("gpu:0", 2.0, 60.0, 2900.0)],
        )
        clock = {"t": 0.0}

        def advance(seconds: float) -> float:
            a, b = clock["t"], clock["t"] + seconds
            clock["t"] = b
            first = max(0.0, min(b, 2.0) - a)
            return 100.0 * first + 50.0 * (b - a - first)

        return MeterEnv(meter=meter, advance=advance, tolerance_j=1e-9)


def test_loop_repeats_the_trace() -> None:
    meter = ReplayMeter([GPU], [TraceInterval("gpu:0", 0.0, 1.0, 10.0)], loop=True)
    meter.start(0.0)
    (r,) = meter.read(3.5)
    assert r.energy_j == pytest.approx(35.0)


def test_without_loop_power_is_zero_after_the_end() -> None:
    meter = ReplayMeter([GPU], [TraceInterval("gpu:0", 0.0, 1.0, 10.0)])
    meter.start(0.0)
    assert meter.read(3.0)[0].energy_j == pytest.approx(10.0)
    assert meter.read(5.0)[0].energy_j == pytest.approx(0.0)


def test_speed_plays_faster() -> None:
    meter = ReplayMeter([GPU], [TraceInterval("gpu:0", 0.0, 10.0, 100.0)], speed=2.0)
    meter.start(0.0)
    assert meter.read(1.0)[0].energy_j == pytest.approx(20.0)


def test_recorded_gap_plays_back_as_gap() -> None:
    meter = ReplayMeter(
        [GPU],
        [TraceInterval("gpu:0", 0.0, 1.0, 10.0), TraceInterval("gpu:0", 1.0, 2.0, None)],
    )
    meter.start(0.0)
    assert meter.read(0.5)[0].energy_j == pytest.approx(5.0)
    gap = meter.read(1.5)[0]
    assert gap.energy_j is None and gap.note


def test_from_csv_reads_the_export_format(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "component,kind,method,sensor,counted,relative_uncertainty,t_start_s,t_end_s,energy_j,"
        "power_w,note\n"
        "cpu,cpu,estimated,cpu-tdp-utilisation,true,0.3,0.0,1.0,12.0,12.0,\n"
        "cpu,cpu,estimated,cpu-tdp-utilisation,true,0.3,1.0,2.0,,,unreadable\n",
        encoding="utf-8",
    )
    meter = ReplayMeter.from_csv(path)
    (comp,) = meter.start(0.0)
    assert comp.source.method is Method.ESTIMATED
    assert comp.source.sensor == "replay of cpu-tdp-utilisation"
    assert comp.relative_uncertainty == pytest.approx(0.3)
    assert meter.read(1.0)[0].energy_j == pytest.approx(12.0)
    assert meter.read(2.0)[0].energy_j is None


def test_from_csv_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
        "cpu,cpu,estimated,x,true,0,1,1\n"
        "cpu,cpu,estimated,x,true,zero,1,1\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError, match=r"bad\.csv:3"):
        ReplayMeter.from_csv(path)


def test_from_csv_missing_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read"):
        ReplayMeter.from_csv(tmp_path / "absent.csv")
    (tmp_path / "cols.csv").write_text("component,energy_j\ncpu,1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="lacks column"):
        ReplayMeter.from_csv(tmp_path / "cols.csv")
