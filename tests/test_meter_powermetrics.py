"""The powermetrics meter on constructed samples of powermetrics' plist stream
(tests/data/README-powermetrics.md), through a pipe and through a fake `powermetrics` on PATH."""

from __future__ import annotations

import json
import os
import platform
import plistlib
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

from wattwise._errors import MeterPermissionError, MeterUnavailable
from wattwise.meters._base import ComponentKind, Method
from wattwise.meters._powermetrics import (
    PowermetricsMeter,
    parse_powermetrics_sample,
)
from wattwise.meters._registry import detect_meters
from wattwise.testing._fake_clock import FakeClock
from wattwise.testing._meter_contract import MeterContract, MeterEnv
from wattwise.tracking import Tracker

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "powermetrics-m1-max.plist"


def recorded_samples(path: Path = RECORDED) -> list[bytes]:
    return [part for part in path.read_bytes().split(b"\0") if part.strip()]


def sample(seconds: float, cpu_w: float, gpu_w: float, ane_w: float) -> bytes:
    processor = {"cpu_power": cpu_w * 1e3, "gpu_power": gpu_w * 1e3, "ane_power": ane_w * 1e3}
    return plistlib.dumps({"elapsed_ns": round(seconds * 1e9), "processor": processor}) + b"\0"


class PipeStream:
    """A powermetrics stand-in: the test writes its stdout into a pipe."""

    def __init__(self) -> None:
        read_fd, self.write_fd = os.pipe()
        self.stdout: IO[bytes] | None = os.fdopen(read_fd, "rb", buffering=0)
        self.stopped = 0

    def write(self, data: bytes) -> None:
        os.write(self.write_fd, data)

    def poll(self) -> int | None:
        return None

    def stop(self) -> str:
        self.stopped += 1
        if self.stdout is not None:
            self.stdout.close()
            os.close(self.write_fd)
            self.stdout = None
        return "stopped"


def piped_meter(**kwargs: object) -> tuple[PowermetricsMeter, list[PipeStream]]:
    streams: list[PipeStream] = []

    def open_stream(argv: Sequence[str]) -> PipeStream:
        assert argv[1:] == [
            "--samplers",
            "cpu_power,gpu_power,ane_power",
            "-f",
            "plist",
            "-i",
            "1000",
        ]
        streams.append(PipeStream())
        return streams[-1]

    meter = PowermetricsMeter(
        executable="/usr/bin/powermetrics",
        system="darwin",
        machine="arm64",
        is_root=True,
        open_stream=open_stream,
        **kwargs,  # type: ignore[arg-type]
    )
    return meter, streams


class TestPowermetricsContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        meter, streams = piped_meter()

        def advance(seconds: float) -> float:
            streams[-1].write(sample(seconds, 12.0, 5.0, 0.5))
            return 17.5 * seconds

        yield MeterEnv(meter=meter, advance=advance, tolerance_j=1e-6)
        meter.close()


def test_parses_the_recorded_samples() -> None:
    parsed = [parse_powermetrics_sample(s) for s in recorded_samples()]
    assert len(parsed) == 4
    assert parsed[1].elapsed_s == pytest.approx(1.001876543)
    assert parsed[1].power_w == pytest.approx({"cpu": 31.456, "gpu": 1.38, "ane": 0.0})
    assert parsed[2].power_w["ane"] == pytest.approx(1.21)


def test_energy_only_samples_are_read_too() -> None:
    (only,) = recorded_samples(DATA / "powermetrics-m1-energy-only.plist")
    parsed = parse_powermetrics_sample(only)
    # 2500 mJ of CPU and 200 mJ of GPU (in the gpu dictionary) over 0.5 s
    assert parsed.power_w == pytest.approx({"cpu": 5.0, "gpu": 0.4, "ane": 0.0})


def test_integrates_power_times_each_samples_length() -> None:
    meter, streams = piped_meter()
    components = meter.start(0.0)
    assert [(c.name, c.kind) for c in components] == [
        ("cpu", ComponentKind.CPU),
        ("gpu:0", ComponentKind.GPU),
        ("ane", ComponentKind.ANE),
    ]
    assert all(c.source.method is Method.MEASURED and c.counted for c in components)
    assert components[0].source.sensor == "powermetrics-cpu-power"
    assert components[0].edge_uncertainty_s == 1.0
    samples = recorded_samples()
    streams[0].write(samples[0] + b"\0" + samples[1] + b"\0" + samples[2][:100])  # 2.5 samples
    cpu, gpu, ane = meter.read(2.0)
    assert cpu.energy_j == pytest.approx(8.123 * 1.002345678 + 31.456 * 1.001876543)
    assert gpu.energy_j == pytest.approx(0.412 * 1.002345678 + 1.38 * 1.001876543)
    assert ane.energy_j == 0.0
    streams[0].write(samples[2][100:] + b"\0")  # the rest of the third sample
    cpu, gpu, ane = meter.read(3.0)
    assert ane.energy_j == pytest.approx(1.21 * 1.003012345)
    meter.close()


def test_an_unreadable_sample_is_a_gap_never_zero() -> None:
    meter, streams = piped_meter()
    meter.start(0.0)
    streams[0].write(b"<?xml version='1.0'?><plist><dict><key>elap\0")
    readings = meter.read(1.0)
    assert all(r.energy_j is None for r in readings)
    assert "could not be read" in (readings[0].note or "")
    streams[0].write(sample(1.0, 10.0, 1.0, 0.0))
    assert meter.read(2.0)[0].energy_j == pytest.approx(10.0)
    meter.close()


def test_a_missing_part_is_a_gap_for_that_part() -> None:
    meter, streams = piped_meter()
    meter.start(0.0)
    streams[0].write(
        plistlib.dumps({"elapsed_ns": 10**9, "processor": {"cpu_power": 900.0}}) + b"\0"
    )
    cpu, gpu, ane = meter.read(1.0)
    assert cpu.energy_j == pytest.approx(0.9)
    assert gpu.energy_j is None and "without gpu power" in (gpu.note or "")
    assert ane.energy_j is None
    meter.close()


def test_no_sample_for_too_long_is_a_gap() -> None:
    meter, _ = piped_meter()
    meter.start(0.0)
    assert [r.energy_j for r in meter.read(1.5)] == [0.0, 0.0, 0.0]  # a sample may be late
    readings = meter.read(4.5)  # more than 3 periods + 1 s without one
    assert all(r.energy_j is None for r in readings)
    assert "no powermetrics sample for 4.5 s" in (readings[0].note or "")
    meter.close()


def test_not_root_is_one_line_and_a_permission_error() -> None:
    meter = PowermetricsMeter(system="darwin", machine="arm64", is_root=False, executable="/x")
    probe = meter.probe()
    assert not probe.available
    assert probe.reason.startswith("powermetrics needs root") and "\n" not in probe.reason
    with pytest.raises(MeterPermissionError, match="needs root"):
        meter.start(0.0)


@pytest.mark.parametrize(
    ("system", "machine", "words"),
    [("linux", "x86_64", "macOS's (this is linux)"), ("darwin", "x86_64", "Apple silicon")],
)
def test_elsewhere_the_probe_says_why(system: str, machine: str, words: str) -> None:
    meter = PowermetricsMeter(system=system, machine=machine, is_root=True)
    assert words in meter.probe().reason
    with pytest.raises(MeterUnavailable):
        meter.start(0.0)


def test_this_machine_probe_is_unavailable_with_a_reason() -> None:
    probe = PowermetricsMeter().probe()
    if sys.platform != "darwin":
        assert not probe.available and "macOS" in probe.reason


# -- the real streaming path: a fake `powermetrics` executable on PATH ------------------


def _fake_powermetrics(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "bin" / "powermetrics"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def _read_until(meter: PowermetricsMeter, done: object, timeout_s: float = 20.0) -> list[float]:
    """Read the real subprocess until ``done(totals)``; it runs on the real clock."""
    totals = [0.0, 0.0, 0.0]
    deadline = time.monotonic() + timeout_s
    now = 0.0
    while time.monotonic() < deadline:
        now += 0.1
        for i, r in enumerate(meter.read(now)):
            totals[i] += r.energy_j or 0.0
        if done(totals):  # type: ignore[operator]
            break
        time.sleep(0.05)  # a real process: wait for its output (no clock to inject)
    return totals


def test_streams_from_a_powermetrics_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        f"args = sys.argv[1:]\n"
        f"assert args[:2] == ['--samplers', 'cpu_power,gpu_power,ane_power'], args\n"
        f"assert args[2:4] == ['-f', 'plist'] and args[4] == '-i', args\n"
        f"data = open({str(RECORDED)!r}, 'rb').read()\n"
        f"sys.stdout.buffer.write(data); sys.stdout.flush()\n"
        f"time.sleep(60)\n"
    )
    exe = _fake_powermetrics(tmp_path, body)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    meter = PowermetricsMeter(system="darwin", machine="arm64", is_root=True)
    assert meter.argv()[0] == str(exe)
    meter.start(0.0)
    expected = [parse_powermetrics_sample(s) for s in recorded_samples()]
    cpu_j = sum(s.power_w["cpu"] * s.elapsed_s for s in expected)
    totals = _read_until(meter, lambda t: t[0] >= cpu_j - 1e-9)
    meter.close()  # stops the process that would sleep for a minute
    assert totals[0] == pytest.approx(cpu_j)
    assert totals[1] == pytest.approx(sum(s.power_w["gpu"] * s.elapsed_s for s in expected))


def test_a_powermetrics_that_refuses_gives_gaps_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = _fake_powermetrics(
        tmp_path,
        "sys.stderr.write('powermetrics must be invoked as the superuser\\n'); sys.exit(1)",
    )
    meter = PowermetricsMeter(executable=str(exe), system="darwin", machine="arm64", is_root=True)
    meter.start(0.0)
    deadline = time.monotonic() + 20.0
    readings = meter.read(0.1)
    while readings[0].energy_j is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # a real process: wait for it to exit
        readings = meter.read(0.1)
    assert readings[0].energy_j is None
    assert "must be invoked as the superuser" in (readings[0].note or "")
    meter.close()


# -- where powermetrics cannot run: the Apple-silicon power table ----------------------


# The table itself and the estimate's use of it: tests/test_apple_table.py.


def test_detection_on_a_mac_without_root_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setattr(os, "geteuid", lambda: 501)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    found = detect_meters(powercap_root="/nonexistent", environ={})
    probe = next(p for p in found.probes if p.meter == "powermetrics")
    assert not probe.available and probe.reason.startswith("powermetrics needs root")
    assert any("powermetrics needs root" in note for note in found.notes)
    assert not any(m.name == "powermetrics" for m in found.meters)


def test_cli_meters_lists_the_powermetrics_probe(child_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wattwise", "meters", "--json"],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = {m["meter"]: m for m in json.loads(done.stdout)["meters"]}["powermetrics"]
    assert not found["available"] and not found["used"]
    assert found["reason"] == f"powermetrics is macOS's (this is {sys.platform})"


def test_a_tracked_run_gets_every_samples_energy_and_the_ane() -> None:
    """Through the real Tracker (sampler thread on a fake clock): two 1 s samples."""
    meter, streams = piped_meter()
    clock = FakeClock()
    tracker = Tracker("mac", meters=[meter], store=False, interval_s=0.5, clock=clock)
    with tracker:
        streams[0].write(sample(1.0, 10.0, 2.0, 0.5) + sample(1.0, 14.0, 2.0, 0.5))
        clock.advance(2.0)
    result = tracker.result
    assert result is not None
    by_name = {c.name: c for c in result.components}
    assert by_name["cpu"].energy_j == pytest.approx(24.0)
    assert by_name["gpu:0"].energy_j == pytest.approx(4.0)
    assert by_name["ane"].energy_j == pytest.approx(1.0)
    assert result.energy_j == pytest.approx(29.0)
    assert result.provenance == "measured"
    assert streams[0].stopped == 1  # the run's end stopped powermetrics
