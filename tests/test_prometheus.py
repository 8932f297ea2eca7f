"""Prometheus export, scraped from a real endpoint on the loopback: from ``track()``, from
``wattwise run`` and from ``wattwise exporter`` (real child processes), on a fake powercap
tree whose counters the test advances, so every figure is known exactly."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import wattwise
from wattwise import ConfigError
from wattwise.carbon import resolve_location
from wattwise.meters._nvml import NvmlMeter
from wattwise.meters._rapl import RaplMeter
from wattwise.monitoring import MACHINE_RUN_ID, METRICS, MachineMonitor
from wattwise.testing import FakeClock
from wattwise.testing._fake_nvml import make_fake_nvml
from wattwise.testing._fake_powercap import FakePowercap

LOOPBACK = "127.0.0.1"
ARGV = [sys.executable, "-m", "wattwise"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> list[Sample]:
    """Every sample of one GET of /metrics, parsed by prometheus_client's own parser."""
    response = httpx.get(f"http://{LOOPBACK}:{port}/metrics", timeout=5.0)
    response.raise_for_status()
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def values(samples: list[Sample], name: str, **labels: str) -> dict[str, float]:
    """``name``'s samples matching ``labels``, by component (or run name)."""
    return {
        s.labels.get("component", s.labels.get("run_name", "")): s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    }


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll a child process's endpoint (real time: the child has its own clock)."""
    give_up = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def scrape_or_none(port: int) -> list[Sample] | None:
    try:
        return scrape(port)
    except httpx.HTTPError:
        return None


@pytest.fixture
def fake(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "sys")


def test_track_serves_energy_power_and_gaps_at_scrape_time(
    fake: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATTWISE_ZONE", "DE")
    pkg0 = fake.add_socket(dram=False, core=False)
    pkg1 = fake.add_socket(dram=False, core=False)
    clock = FakeClock()
    port = free_port()
    options = {"meters": [RaplMeter(root=fake.root)], "store": False, "clock": clock}
    with wattwise.track("train", interval_s=0.5, prometheus=f"{LOOPBACK}:{port}", **options) as t:
        fake.advance(pkg0, 15.0)
        fake.advance(pkg1, 5.0)
        clock.advance(0.5)
        live = scrape(port)
        fake.make_unreadable(pkg1)
        fake.advance(pkg0, 10.0)
        clock.advance(0.5)
        in_gap = scrape(port)
        fake.restore(pkg1)
        clock.advance(0.5)
    assert t.result is not None

    run = {"run_id": t.run_id, "run_name": "train", "scope": "machine"}
    energy = values(live, "wattwise_energy_joules_total", **run)
    assert energy == pytest.approx({"cpu:package-0": 15.0, "cpu:package-1": 5.0}, abs=1e-5)
    power = values(live, "wattwise_power_watts", method="measured", sensor="rapl-powercap")
    assert power == pytest.approx({"cpu:package-0": 30.0, "cpu:package-1": 10.0}, abs=1e-4)
    assert values(live, "wattwise_run_energy_joules_total", method="measured") == pytest.approx(
        {"train": 20.0}, abs=1e-5
    )
    assert values(live, "wattwise_component_in_gap") == {"cpu:package-0": 0, "cpu:package-1": 0}
    uncertainty = values(live, "wattwise_energy_uncertainty_joules")
    assert set(uncertainty) == set(energy) and all(u > 0 for u in uncertainty.values())

    # A component in a gap has no power sample (never a silent zero) and says it is in a gap.
    assert set(values(in_gap, "wattwise_power_watts")) == {"cpu:package-0"}
    assert values(in_gap, "wattwise_component_in_gap") == {"cpu:package-0": 0, "cpu:package-1": 1}
    assert values(in_gap, "wattwise_gap_seconds_total")["cpu:package-1"] == pytest.approx(0.5)
    assert values(in_gap, "wattwise_energy_joules_total")["cpu:package-1"] == pytest.approx(5.0)

    # The ended run stays served with its final figures and its emissions.
    ended = scrape(port)
    assert values(ended, "wattwise_run_info", status="completed") == {"train": 1.0}
    assert values(ended, "wattwise_power_watts") == {}
    assert values(ended, "wattwise_run_energy_joules_total") == pytest.approx(
        {"train": t.result.energy_j}
    )
    assert t.result.carbon is not None
    emissions = values(ended, "wattwise_run_emissions_grams", zone="DE", method="estimated")
    assert emissions == pytest.approx({"train": t.result.carbon.emissions_g})

    # The next run on the port shares the endpoint and makes the ended one give way.
    with wattwise.track("eval", prometheus=f"{LOOPBACK}:{port}", interval_s=0.5, **options) as u:
        assert {s.labels["run_id"] for s in scrape(port) if "run_id" in s.labels} == {u.run_id}


def test_the_environment_variable_asks_for_it_and_nothing_is_served_otherwise(
    fake: FakePowercap, monkeypatch: pytest.MonkeyPatch, child_env: dict[str, str]
) -> None:
    fake.add_socket(dram=False, core=False)
    port = free_port()
    monkeypatch.setenv("WATTWISE_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("WATTWISE_PROMETHEUS_ADDR", LOOPBACK)
    with wattwise.track("env", meters=[RaplMeter(root=fake.root)], store=False) as t:
        assert values(scrape(port), "wattwise_run_info", run_id=t.run_id) == {"env": 1.0}

    # Not asked for: nothing listens, and prometheus-client is not even imported.
    code = (
        "import sys, wattwise\n"
        "with wattwise.track('quiet', store=False):\n    pass\n"
        "print('prometheus_client' in sys.modules, 'wattwise.monitoring' in sys.modules)\n"
    )
    env = {k: v for k, v in child_env.items() if not k.startswith("WATTWISE_PROMETHEUS")}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("given", "env", "message"),
    [
        ("http", None, "prometheus must be a port number from 1 to 65535 (or ADDR:PORT), got http"),
        (0, None, "got 0"),
        (None, "70000", "WATTWISE_PROMETHEUS_PORT must be a port number"),
    ],
)
def test_a_bad_port_is_one_clear_error(
    given: int | str | None, env: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is not None:
        monkeypatch.setenv("WATTWISE_PROMETHEUS_PORT", env)
    with (
        pytest.raises(ConfigError, match=re.escape(message)),
        wattwise.track("bad", prometheus=given),
    ):
        pass


def test_a_port_in_use_is_one_clear_error(fake: FakePowercap) -> None:
    fake.add_socket(dram=False, core=False)
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        tracker = wattwise.Tracker(
            "busy", meters=[RaplMeter(root=fake.root)], store=False, prometheus=f"{LOOPBACK}:{port}"
        )
        with pytest.raises(ConfigError) as info:
            tracker.start()
    assert str(info.value) == (
        f"cannot serve Prometheus metrics on {LOOPBACK}:{port}: the port is in use "
        "(choose another port)"
    )
    assert not tracker.running


def test_machine_monitor_counts_a_recovered_gap_and_serves_no_power_inside_it(
    fake: FakePowercap,
) -> None:
    pkg = fake.add_socket(dram=False, core=False)
    clock = FakeClock()
    de = resolve_location("DE")
    monitor = MachineMonitor([RaplMeter(root=fake.root)], interval_s=0.5, clock=clock, location=de)
    try:
        fake.advance(pkg, 4.0)
        clock.advance(0.5)
        (first,) = monitor.live().components
        assert (first.energy.energy_j, first.power_w, first.in_gap) == pytest.approx(
            (4.0, 8.0, False)
        )
        fake.make_unreadable(pkg)
        fake.advance(pkg, 3.0)
        clock.advance(0.5)
        (gap,) = monitor.live().components
        assert gap.in_gap and gap.power_w is None and gap.energy.energy_j == pytest.approx(4.0)
        fake.restore(pkg)
        fake.advance(pkg, 1.0)
        clock.advance(0.5)
        live = monitor.live()
    finally:
        monitor.close()
    (back,) = live.components
    # The counter recovered the gap's energy: nothing lost, nothing invented.
    assert back.energy.energy_j == pytest.approx(8.0, abs=1e-5)
    assert back.energy.gap_s == 0.0 and not back.in_gap
    assert live.run_id == MACHINE_RUN_ID and live.elapsed_s == pytest.approx(1.5)
    # Its emissions so far: the counted energy at the zone's intensity.
    assert live.zone == "DE"
    assert live.emissions_g == pytest.approx(8.0 / 3.6e6 * de.intensity_g_per_kwh * de.pue)


def _cli_env(child_env: dict[str, str], fake: FakePowercap, store: Path) -> dict[str, str]:
    env = {k: v for k, v in child_env.items() if not k.startswith("WATTWISE_PROMETHEUS")}
    env["WATTWISE_POWERCAP_ROOT"] = str(fake.root)
    env["WATTWISE_STORE"] = str(store)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


CHILD = (
    "import os, pathlib, time\n"
    "release = pathlib.Path({release!r})\n"
    "deadline = time.monotonic() + 60\n"
    "while not release.exists() and time.monotonic() < deadline:\n"
    "    time.sleep(0.02)\n"
    "pathlib.Path({seen!r}).write_text(os.environ.get('WATTWISE_PROMETHEUS_PORT', 'unset'))\n"
)


@pytest.mark.slow
def test_wattwise_run_serves_the_run_while_the_command_runs(
    fake: FakePowercap, child_env: dict[str, str], tmp_path: Path
) -> None:
    import json

    pkg = fake.add_socket(dram=True, core=False)
    port = free_port()
    env = _cli_env(child_env, fake, tmp_path / "runs.sqlite")
    env["WATTWISE_PROMETHEUS_PORT"] = str(port)  # asked for by the environment
    env["WATTWISE_PROMETHEUS_ADDR"] = LOOPBACK
    release, seen = tmp_path / "release", tmp_path / "seen"
    script = CHILD.format(release=str(release), seen=str(seen))
    argv = [sys.executable, "-m", "wattwise", "run", "--json", "--interval", "0.1", "--name"]
    proc = subprocess.Popen(
        [*argv, "busy", "--", sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: bool(values(scrape_or_none(port) or [], "wattwise_run_info")), "the run")
        fake.advance(pkg, 6.0)

        def counted() -> bool:
            got = values(scrape(port), "wattwise_energy_joules_total", run_name="busy")
            return got.get("cpu:package-0", 0.0) >= 6.0 - 1e-6

        wait_for(counted, "the energy")
        live = scrape(port)
    finally:
        release.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out)
    energy = values(live, "wattwise_energy_joules_total", run_id=result["run_id"])
    assert energy == pytest.approx({"cpu:package-0": 6.0, "cpu:dram-0": 0.0}, abs=1e-5)
    assert result["energy_j"] == pytest.approx(6.0, abs=1e-5)
    assert set(values(live, "wattwise_power_watts", method="measured")) == set(energy)
    # The command does not inherit the port this run serves on.
    assert seen.read_text() == "unset"


@pytest.mark.slow
def test_wattwise_run_with_a_port_in_use_is_one_line_and_runs_nothing(
    fake: FakePowercap, child_env: dict[str, str], tmp_path: Path
) -> None:
    fake.add_socket(dram=True, core=False)
    env = _cli_env(child_env, fake, tmp_path / "runs.sqlite")
    marker = tmp_path / "ran"
    touch = ["--", "touch", str(marker)]
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*ARGV, "run", "--prometheus", f"{LOOPBACK}:{port}", *touch],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [
        f"error: cannot serve Prometheus metrics on {LOOPBACK}:{port}: the port is in use "
        "(choose another port)"
    ]
    assert "Traceback" not in proc.stderr and not marker.exists()


@pytest.mark.slow
def test_wattwise_exporter_serves_the_machine_until_interrupted(
    fake: FakePowercap, child_env: dict[str, str], tmp_path: Path
) -> None:
    pkg = fake.add_socket(dram=False, core=False)
    port = free_port()
    env = _cli_env(child_env, fake, tmp_path / "runs.sqlite")
    argv = [sys.executable, "-m", "wattwise", "exporter", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--addr", LOOPBACK, "--interval", "0.1", "--zone", "DE"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        machine = {"run_id": MACHINE_RUN_ID, "scope": "machine"}
        wait_for(
            lambda: bool(values(scrape_or_none(port) or [], "wattwise_run_info", **machine)),
            "the exporter",
        )
        fake.advance(pkg, 3.0)
        wait_for(
            lambda: (
                values(scrape(port), "wattwise_energy_joules_total").get("cpu:package-0", 0)
                >= 3.0 - 1e-6
            ),
            "the energy",
        )
        energy = values(scrape(port), "wattwise_energy_joules_total", **machine)
        fake.make_unreadable(pkg)
        wait_for(
            lambda: values(scrape(port), "wattwise_component_in_gap").get("cpu:package-0") == 1,
            "the gap",
        )
        in_gap = scrape(port)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert energy["cpu:package-0"] == pytest.approx(3.0, abs=1e-5)
    de = resolve_location("DE")
    (total,) = values(in_gap, "wattwise_run_energy_joules_total", method="mixed").values()
    emissions = values(in_gap, "wattwise_run_emissions_grams", zone="DE", method="estimated")
    assert emissions == pytest.approx({"machine": total / 3.6e6 * de.intensity_g_per_kwh})
    # No RAPL dram zone: the memory is estimated beside the measured package.
    assert values(in_gap, "wattwise_energy_joules_total", method="estimated").keys() == {"ram"}
    # The package in a gap has no power sample (never a zero); the memory still has one.
    assert values(in_gap, "wattwise_power_watts").keys() == {"ram"}
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().endswith("stopped")
    assert out == ""
    assert not (tmp_path / "runs.sqlite").exists()  # the exporter stores nothing
    with socket.socket() as again:  # and it freed its port (as a server binds it)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind((LOOPBACK, port))
        again.listen()


@pytest.mark.parametrize(
    ("args", "who"),
    [
        (["exporter"], "wattwise exporter"),
        (["run", "--prometheus", "9", "--", "true"], "wattwise run --prometheus"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    args: list[str], who: str, child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys\nsys.modules['prometheus_client'] = None\n"
        f"sys.argv = ['wattwise', *{args!r}]\n"
        "from wattwise.cli import main\nmain()\n"
    )
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "runs.sqlite"))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [f"error: {who} needs prometheus-client: pip install 'wattwise[prometheus]'"]
    assert not (tmp_path / "runs.sqlite").exists()


def test_every_served_metric_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "monitoring.md").read_text()
    for name in METRICS:
        assert f"`{name}`" in doc, name


def test_track_missing_the_extra_says_so_and_the_run_does_not_start(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys\nsys.modules['prometheus_client'] = None\nimport wattwise\n"
        "t = wattwise.Tracker('x', store=False, prometheus=9)\n"
        "try:\n    t.start()\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc, t.running)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "MissingExtra Prometheus export needs prometheus-client: "
        "pip install 'wattwise[prometheus]' False"
    )


def test_gpus_of_a_fake_nvml_are_served_with_their_device_and_sensor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake = make_fake_nvml(2)
    clock = FakeClock()
    port = free_port()
    with wattwise.track(
        "gpus",
        meters=[NvmlMeter(nvml=fake.module)],
        store=False,
        interval_s=1.0,
        clock=clock,
        prometheus=f"{LOOPBACK}:{port}",
    ):
        fake.advance(1.0, 100.0)
        clock.advance(1.0)
        live = scrape(port)
        fake.reset(0)  # a driver reset: gpu:0's next reading is a gap
        fake.advance(1.0, 100.0)
        clock.advance(1.0)
        after_reset = scrape(port)
    gpus = {"kind": "gpu", "method": "measured", "sensor": "nvml-energy-counter"}
    assert values(live, "wattwise_energy_joules_total", **gpus) == pytest.approx(
        {"gpu:0": 100.0, "gpu:1": 100.0}
    )
    assert values(live, "wattwise_power_watts", **gpus) == pytest.approx(
        {"gpu:0": 100.0, "gpu:1": 100.0}
    )
    devices = {
        s.labels["component"]: s.labels["device"]
        for s in live
        if s.name == "wattwise_energy_joules_total"
    }
    assert devices == {"gpu:0": "0", "gpu:1": "1"}
    assert values(after_reset, "wattwise_component_in_gap") == {"gpu:0": 1, "gpu:1": 0}
    assert values(after_reset, "wattwise_power_watts").keys() == {"gpu:1"}
