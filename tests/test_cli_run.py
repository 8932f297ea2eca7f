"""`wattwise run`, `runs` and `meters` end to end, in real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from wattwise.testing._fake_powercap import FakePowercap

BUSY = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < {s}: pass\n"


class Cli:
    def __init__(self, env: dict[str, str], store: Path) -> None:
        self.env = dict(env)
        self.env["WATTWISE_STORE"] = str(store)
        self.env.pop("CUDA_VISIBLE_DEVICES", None)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "wattwise", *args]

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def json(self, *args: str) -> Any:
        proc = self(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def cli(child_env: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(child_env, tmp_path / "cli-store.sqlite")


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]


@pytest.mark.slow
def test_run_json_has_the_documented_fields_and_is_stored(cli: Cli) -> None:
    proc = cli("run", "--name", "busy", "--json", "--", sys.executable, "-c", BUSY.format(s=1.0))
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    for key in (
        "run_id",
        "name",
        "status",
        "exit_code",
        "duration_s",
        "energy_j",
        "scope",
        "components",
        "net_energy_j",
        "baseline_power_w",
        "emissions_g",
    ):
        assert key in run
    assert run["name"] == "busy" and run["status"] == "completed" and run["exit_code"] == 0
    assert run["duration_s"] >= 1.0
    assert run["energy_j"] > 0
    for comp in run["components"]:
        assert set(comp) >= {"name", "kind", "source", "energy_j", "uncertainty_j"}
        assert comp["method"] in ("measured", "estimated")
        assert comp["source"].startswith(comp["method"])
    # No sensor here: every figure says it is estimated, with an uncertainty.
    assert run["provenance"] == "estimated"
    assert all(c["uncertainty_j"] > 0 for c in run["components"] if c["energy_j"] > 0)

    listed = cli.json("runs", "list", "--json")
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    assert {"run_id", "name", "status", "energy_j"} <= set(listed[0])
    shown = cli.json("runs", "show", run["run_id"][:8], "--json")
    assert shown["energy_j"] == pytest.approx(run["energy_j"])


def test_exit_code_of_the_command_is_passed_on(cli: Cli) -> None:
    proc = cli("run", "--json", "--", "sh", "-c", "exit 3")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["status"] == "failed"


def test_human_summary_goes_to_stderr_and_leaves_stdout_to_the_command(cli: Cli) -> None:
    proc = cli("run", "--", "sh", "-c", "echo hello")
    assert proc.returncode == 0
    assert proc.stdout == "hello\n"
    assert "estimated (cpu-tdp-utilisation)" in proc.stderr
    assert "energy" in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["run"], "no command given", 2),
        (["run", "--", "no-such-command-xyz"], "command not found", 127),
        (["run", "--baseline", "soon", "--", "true"], "bad duration", 2),
        (["runs", "show", "ffffffff"], "no run store at", 2),
        (["run", "--store", "postgresql://nobody@127.0.0.1:1/x", "--", "true"], "", 2),
    ],
)
def test_bad_input_is_one_clear_line(cli: Cli, args: list[str], needle: str, code: int) -> None:
    proc = cli(*args)
    assert proc.returncode == code, proc.stderr
    line = one_line_error(proc)
    assert needle in line


def test_unknown_flag_is_a_usage_error(cli: Cli) -> None:
    proc = cli("run", "--frobnicate", "--", "true")
    assert proc.returncode == 2
    assert "No such option" in proc.stderr


def test_corrupt_store_file_is_a_clear_error_and_left_alone(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    proc = cli("runs", "list", "--store", str(bad))
    assert proc.returncode == 2
    one_line_error(proc)
    assert bad.read_bytes() == b"this is not a database" * 100


@pytest.mark.slow
def test_killed_command_is_interrupted_with_its_samples(cli: Cli) -> None:
    script = BUSY.format(s=2.5) + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    proc = cli("run", "--json", "--", sys.executable, "-c", script)
    assert proc.returncode == 128 + signal.SIGKILL
    run = json.loads(proc.stdout)
    assert run["status"] == "interrupted"
    assert run["exit_code"] == 137
    csv_text = cli("runs", "export", run["run_id"], "--format", "csv").stdout
    assert len(csv_text.strip().splitlines()) > 4  # header + samples of ~2.5 s at 1 s


@pytest.mark.slow
def _named(process: psutil.Process, name: str) -> bool:
    try:
        return process.name() == name
    except psutil.Error:  # gone since it was listed
        return False


def test_killed_wattwise_leaves_an_interrupted_run_with_samples(cli: Cli) -> None:
    proc = subprocess.Popen(
        cli.argv("run", "--name", "doomed", "--interval", "0.2", "--", "sleep", "60"),
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children: list[psutil.Process] = []
    try:
        # The command starts once the run is tracked; a loaded machine may take seconds
        # to get there, so wait for it, then for at least two flushes (every 2 s).
        deadline = time.monotonic() + 60
        while not any(_named(c, "sleep") for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
            children = psutil.Process(proc.pid).children(recursive=True)
        time.sleep(4.5)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        for child in children:
            child.kill()
    runs = cli.json("runs", "list", "--json")
    assert len(runs) == 1
    run = runs[0]
    assert run["name"] == "doomed"
    assert run["status"] == "interrupted"
    assert run["duration_s"] >= 2.0
    assert run["energy_j"] > 0  # from the samples flushed before the kill
    samples = cli.json("runs", "export", run["run_id"], "--format", "json")["samples"]
    assert len(samples) >= 2 * 8  # two components, >= 8 intervals of 0.2 s flushed


def test_signals_are_forwarded_to_the_command(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    script = (
        "import signal, sys, time, pathlib\n"
        f"def bye(*_):\n    pathlib.Path({str(marker)!r}).write_text('x')\n    sys.exit(5)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        cli.argv("run", "--json", "--", sys.executable, "-c", script),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    # With --json the command's stdout goes to stderr (stdout is the JSON's alone).
    while proc.stderr.readline().strip() != "ready":
        assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 5, err
    assert marker.exists()
    assert json.loads(out)["status"] == "failed"


@pytest.mark.slow
def test_process_scope_excludes_other_processes(cli: Cli) -> None:
    burner = subprocess.Popen([sys.executable, "-c", BUSY.format(s=30)])
    try:
        time.sleep(0.3)
        machine = cli.json("run", "--json", "--interval", "0.25", "--", "sleep", "1.5")
        process = cli.json(
            "run", "--json", "--scope", "process", "--interval", "0.25", "--", "sleep", "1.5"
        )
    finally:
        burner.kill()
        burner.wait()
    cpu_machine = next(c for c in machine["components"] if c["name"] == "cpu")["energy_j"]
    cpu_process = next(c for c in process["components"] if c["name"] == "cpu")["energy_j"]
    assert process["scope"] == "process"
    # `sleep` uses almost no CPU while the burner uses a whole core.
    assert cpu_process < 0.1 * cpu_machine


@pytest.mark.slow
def test_baseline_gives_net_energy(cli: Cli) -> None:
    run = cli.json(
        "run",
        "--json",
        "--baseline",
        "0.6s",
        "--interval",
        "0.2",
        "--",
        sys.executable,
        "-c",
        BUSY.format(s=1.2),
    )
    assert run["baseline_power_w"] > 0
    assert run["net_energy_j"] is not None
    assert run["net_energy_j"] < run["energy_j"]
    assert run["net_energy_j"] == pytest.approx(
        run["energy_j"] - run["baseline_power_w"] * run["duration_s"], rel=0.05, abs=0.5
    )
    # Net energy has its own uncertainty (issue 12): the run's plus the baseline's.
    assert run["net_uncertainty_j"] > run["uncertainty_j"] > 0
    shown = cli("runs", "show", run["run_id"])
    assert shown.returncode == 0, shown.stderr
    net_line = next(ln.strip() for ln in shown.stdout.splitlines() if ln.strip().startswith("net"))
    assert "±" in net_line


def test_meters_reports_what_was_found_and_why(cli: Cli, tmp_path: Path) -> None:
    found = cli.json("meters", "--json")
    by_name = {m["meter"]: m for m in found["meters"]}
    assert found["probe_order"] == ["rapl", "nvml", "amdsmi", "powermetrics", "estimate"]
    assert [m["meter"] for m in found["meters"]] == found["probe_order"]
    assert all(m["reason"] for m in found["meters"])
    if not Path("/sys/class/powercap").exists():
        assert not by_name["rapl"]["available"]
        assert by_name["estimate"]["used"]

    fake = FakePowercap(tmp_path / "sys")
    fake.add_socket(dram=True)
    cli.env["WATTWISE_POWERCAP_ROOT"] = str(fake.root)
    with_rapl = cli.json("meters", "--json")
    by_name = {m["meter"]: m for m in with_rapl["meters"]}
    assert by_name["rapl"]["available"] and by_name["rapl"]["used"]
    assert "cpu:package-0" in by_name["rapl"]["components"]
    # DRAM is measured, so no memory estimate is needed, and the CPU is not estimated.
    assert not by_name["estimate"]["used"]

    run = cli.json("run", "--json", "--", "sleep", "0.2")
    assert run["provenance"] == "measured"
    assert {c["name"] for c in run["components"]} >= {"cpu:package-0", "cpu:dram-0"}


def test_export_csv_replays_as_the_same_energy(cli: Cli, tmp_path: Path) -> None:
    from wattwise.meters._replay import ReplayMeter

    run = cli.json(
        "run", "--json", "--interval", "0.2", "--", sys.executable, "-c", BUSY.format(s=1.0)
    )
    out = tmp_path / "trace.csv"
    proc = cli("runs", "export", run["run_id"], "--format", "csv", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    meter = ReplayMeter.from_csv(out)
    comps = meter.start(0.0)
    readings = meter.read(run["duration_s"] + 1.0)
    replayed = sum(
        r.energy_j or 0.0
        for r in readings
        if any(c.name == r.component and c.counted for c in comps)
    )
    assert replayed == pytest.approx(run["energy_j"], rel=1e-6)


def test_run_reports_emissions_for_the_zone_and_stores_them(cli: Cli) -> None:
    from wattwise.carbon import resolve_location

    de = resolve_location("DE")
    run = cli.json("run", "--json", "--zone", "DE", "--", sys.executable, "-c", BUSY.format(s=0.5))
    assert run["zone"] == "DE"
    assert run["pue"] == pytest.approx(de.pue)
    assert run["intensity_g_per_kwh"] == pytest.approx(de.intensity_g_per_kwh)
    expected_g = run["energy_j"] / 3.6e6 * de.pue * de.intensity_g_per_kwh
    assert run["emissions_g"] == pytest.approx(expected_g, rel=1e-9)
    assert str(de.year) in run["intensity_source"]
    shown = cli.json("runs", "show", run["run_id"], "--json")
    assert shown["emissions_g"] == pytest.approx(run["emissions_g"])
    assert shown["zone"] == "DE"


def test_cloud_region_brings_its_pue(cli: Cli) -> None:
    run = cli.json("run", "--json", "--cloud", "gcp:europe-west1", "--", "true")
    assert run["pue"] > 1.0
    assert run["emissions_g"] is not None


def test_without_a_zone_the_world_average_is_used_and_said(cli: Cli) -> None:
    cli.env.pop("WATTWISE_ZONE", None)
    cli.env["WATTWISE_CONFIG"] = "/nonexistent-dir/none.toml"
    proc = cli("run", "--json", "--", "true")
    # A config path that was named explicitly but is missing is an error, not a silent default.
    assert proc.returncode == 2
    one_line_error(proc)
    del cli.env["WATTWISE_CONFIG"]
    cli.env["XDG_CONFIG_HOME"] = "/nonexistent-dir"
    run = cli.json("run", "--json", "--", "true")
    assert run["emissions_g"] is not None
    assert "world" in (run["intensity_source"] + run["zone"]).lower()


def test_unknown_zone_lists_the_nearest_matches(cli: Cli) -> None:
    proc = cli("run", "--zone", "GERMNY", "--", "true")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "GERMNY" in line and "DE" in line
    assert cli.json("runs", "list", "--json") == []  # nothing was started


# --- bounds on what the user gives, and commands that cannot start ------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--baseline", "99999999h"], "duration '99999999h' for --baseline is out of range"),
        (["--baseline", "2h"], "at most 1 h"),
        (["--interval", "nan"], "--interval nan is out of range"),
        (["--interval", "inf"], "between 0.01 s and 3600 s"),
        (["--interval", "1e9"], "between 0.01 s and 3600 s"),
        (["--cpu-tdp-w", "1e9"], "CPU TDP 1e+09 W (--cpu-tdp-w / cpu_tdp_w) is not plausible"),
        (["--cpu-tdp-w", "nan"], "between 1 and 1000 W"),
        (["--cpu-tdp-w", "0.1"], "between 1 and 1000 W"),
    ],
)
def test_run_refuses_out_of_range_numbers_naming_the_range(
    cli: Cli, args: list[str], needle: str, tmp_path: Path
) -> None:
    proc = cli("run", *args, "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert needle in one_line_error(proc)
    assert not (tmp_path / "cli-store.sqlite").exists()  # refused before anything is stored


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WATTWISE_CPU_TDP_W": "1e9"}, "(WATTWISE_CPU_TDP_W) is not plausible"),
        ({"WATTWISE_CPU_TDP_W": "many"}, "WATTWISE_CPU_TDP_W='many' is not a number"),
        ({"WATTWISE_CPU_THREADS": "0"}, "CPU threads per package 0 (WATTWISE_CPU_THREADS)"),
        ({"WATTWISE_PUE": "40"}, "PUE '40' is not plausible"),
    ],
)
def test_implausible_environment_settings_are_refused(
    cli: Cli, env: dict[str, str], needle: str
) -> None:
    cli.env.update(env)
    proc = cli("run", "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert needle in one_line_error(proc)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--cpu-tdp-w", "1e9"], {}),
        (["--cpu-tdp-w", "-5"], {}),
        ([], {"WATTWISE_CPU_TDP_W": "abc"}),
        ([], {"WATTWISE_CPU_THREADS": "100000"}),
    ],
)
def test_meters_exits_2_on_invalid_settings(cli: Cli, args: list[str], env: dict[str, str]) -> None:
    cli.env.update(env)
    for extra in ([], ["--json"]):
        proc = cli("meters", *args, *extra)
        assert proc.returncode == 2, proc.stdout
        assert proc.stdout == ""
        one_line_error(proc)


def test_meters_accepts_a_plausible_tdp(cli: Cli) -> None:
    found = cli.json("meters", "--json", "--cpu-tdp-w", "150")
    assert found["probe_order"] == ["rapl", "nvml", "amdsmi", "powermetrics", "estimate"]


def test_run_says_why_a_file_cannot_be_run(cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    proc = cli("run", "--", str(script))
    assert proc.returncode == 126
    line = one_line_error(proc)
    assert f"{script} is not executable" in line and "command not found" not in line
    proc = cli("run", "--", str(tmp_path))
    assert proc.returncode == 126
    assert f"{tmp_path} is a directory, not a command" in one_line_error(proc)
    proc = cli("run", "--", str(tmp_path / "missing.sh"))
    assert proc.returncode == 127
    assert "command not found" in one_line_error(proc) and "no such file" in proc.stderr
    assert not (tmp_path / "cli-store.sqlite").exists()
