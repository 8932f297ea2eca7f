"""Embodied emissions end to end: a real run in a real SQLite store, `runs show`, `carbon
embodied`, and the rendered run and study reports, in real child processes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import psutil
import pytest
from tests._cli import one_error_line, wattwise

from wattwise.carbon import grid_zones
from wattwise.store import RunStore

BUSY = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.4: pass\n"


@pytest.fixture
def env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    out = dict(child_env)
    out["WATTWISE_STORE"] = str(tmp_path / "runs.sqlite")
    out.pop("CUDA_VISIBLE_DEVICES", None)
    return out


def _run(env: dict[str, str]) -> dict[str, object]:
    proc = wattwise(env, "run", "--json", "--zone", "DE", "--", sys.executable, "-c", BUSY)
    assert proc.returncode == 0, proc.stderr
    run: dict[str, object] = json.loads(proc.stdout)
    return run


@pytest.mark.slow
def test_runs_show_puts_the_estimate_beside_the_emissions_and_adds_nothing(
    env: dict[str, str],
) -> None:
    run = _run(env)
    run_id = str(run["run_id"])
    shown = json.loads(wattwise(env, "runs", "show", run_id, "--json").stdout)
    # Operational emissions: the energy at Germany's intensity, exactly, nothing added.
    de = grid_zones()["DE"].intensity_g_per_kwh
    assert shown["emissions_g"] == pytest.approx(shown["energy_j"] / 3.6e6 * de, rel=1e-9)
    assert shown["emissions_g"] == pytest.approx(run["emissions_g"], rel=1e-12)
    listed = json.loads(wattwise(env, "runs", "list", "--json").stdout)
    assert listed[0]["emissions_g"] == shown["emissions_g"] and "embodied" not in listed[0]
    emb = shown["embodied"]
    assert 0 < emb["low_g"] <= emb["embodied_g"] <= emb["high_g"]
    assert emb["duration_s"] == pytest.approx(shown["duration_s"])
    assert "not included in the operational emissions" in emb["label"]
    assert emb["method"].startswith("estimated")

    text = wattwise(env, "runs", "show", run_id[:8])
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert "embodied ~" in flat and "(estimate, range" in flat
    assert "not included in the carbon figure above" in flat


@pytest.mark.slow
def test_carbon_embodied_takes_a_lifetime_and_refuses_bad_ones_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    run_id = str(_run(env)["run_id"])
    four = json.loads(wattwise(env, "carbon", "embodied", run_id, "--json").stdout)
    eight = json.loads(
        wattwise(env, "carbon", "embodied", run_id, "--json", "--lifetime-years", "8").stdout
    )
    assert four["embodied"]["embodied_g"] == pytest.approx(2 * eight["embodied"]["embodied_g"])
    assert eight["embodied"]["lifetime_range_years"] == [3.0, 8.0]  # widened to contain 8
    assert four["emissions_g"] == eight["emissions_g"]  # the operational figure never moves
    halved = json.loads(wattwise(env, "carbon", "embodied", run_id, "--json", "--cpus", "1").stdout)
    cpu = {c["component"]: c for c in halved["embodied"]["components"]}["cpu"]
    assert cpu["share"] <= 1.0

    for args, message in (
        (("--lifetime-years", "-1"), "error: lifetime -1.0 years must be a positive number"),
        (("--lifetime-range", "3to6"), "error: lifetime range '3to6' is not LOW-HIGH"),
        (("--use-ratio", "0"), "error: use ratio 0.0 must be in (0, 1]"),
    ):
        proc = wattwise(env, "carbon", "embodied", run_id, *args)
        assert proc.returncode == 2
        assert one_error_line(proc).startswith(message)
    store_file = Path(env["WATTWISE_STORE"])
    before = store_file.stat().st_mtime_ns
    wattwise(env, "carbon", "embodied", run_id)
    assert store_file.stat().st_mtime_ns == before  # read-only


@pytest.mark.slow
def test_run_and_study_reports_show_the_estimate_beside_the_emissions(
    env: dict[str, str], tmp_path: Path
) -> None:
    run = _run(env)
    run_id = str(run["run_id"])
    out = tmp_path / "run.html"
    proc = wattwise(env, "report", run_id, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    md = out.read_text()
    assert "Embodied emissions (estimate)" in md
    assert md.index("Emissions 0.") < md.index("Embodied emissions (estimate)")
    assert f"beside the operational emissions ({float(str(run['emissions_g'])):.3g} gCO2e)" in md
    assert "not included in them" in md and "Boavizta" in md

    st = RunStore.open(env["WATTWISE_STORE"])
    try:
        st.create_study(study_id="e" * 32, kind="sweep", name="s", params={})
        st.add_study_run("e" * 32, run_id, label="trial 0", attributes={})
        st.finish_study("e" * 32, {"best": 1})
    finally:
        st.close()
    study_out = tmp_path / "study.html"
    proc = wattwise(env, "report", "--study", "eeee", "--out", str(study_out))
    assert proc.returncode == 0, proc.stderr
    html = study_out.read_text()
    assert "Embodied emissions (estimate)" in html and "not included in them" in html


@pytest.mark.slow
def test_a_run_under_slurm_is_charged_what_it_was_given_after_it_ended(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`wattwise run` inside a SLURM job of 1 CPU and 512 MB records that allocation; `runs
    show` and `carbon embodied`, in later processes outside the job, charge that share."""
    (tmp_path / "no-cgroup").mkdir()
    job = dict(
        env,
        WATTWISE_CGROUP_ROOT=str(tmp_path / "no-cgroup"),
        SLURM_JOB_ID="4242",
        SLURM_CPUS_ON_NODE="1",
        SLURM_MEM_PER_NODE="512",
    )
    run_id = str(_run(job)["run_id"])
    shown = json.loads(wattwise(env, "runs", "show", run_id, "--json").stdout)
    recorded = shown["allocation"]
    machine = psutil.cpu_count() or 1
    assert recorded["cpus"] == 1.0 and "SLURM" in recorded["cpus_from"]
    assert recorded["memory_limit_bytes"] == 512 * 2**20
    assert recorded["machine_logical_cpus"] == machine
    assert recorded["machine_memory_bytes"] == psutil.virtual_memory().total
    parts = {c["component"]: c for c in shown["embodied"]["components"]}
    assert parts["cpu"]["share"] == pytest.approx(1 / machine)
    assert parts["ram"]["share"] == pytest.approx(512 * 2**20 / psutil.virtual_memory().total)
    assert any("as recorded with the run (SLURM" in n for n in shown["embodied"]["notes"])

    text = wattwise(env, "carbon", "embodied", run_id)
    assert text.returncode == 0, text.stderr
    flat = " ".join(text.stdout.split())
    assert f"note: CPUs: 1 of the machine's {machine}, as recorded with the run" in flat
    assert "note: RAM: the run's memory limit, 0.5 GB" in flat
    given = json.loads(wattwise(env, "carbon", "embodied", run_id, "--json", "--cpus", "1").stdout)
    assert any("CPUs: 1 given, not the 1 recorded" in n for n in given["embodied"]["notes"])


@pytest.mark.slow
def test_an_upgraded_old_run_keeps_the_whole_machine_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "old.sqlite"
    shutil.copy(Path(__file__).parent / "data" / "store-v2.sqlite", store)
    old = dict(env, WATTWISE_STORE=str(store))
    assert wattwise(old, "runs", "upgrade").returncode == 0
    shown = json.loads(wattwise(old, "runs", "show", "1f9136ac", "--json").stdout)
    assert shown["allocation"] is None
    assert any("allocation was not recorded" in n for n in shown["embodied"]["notes"])
    text = wattwise(old, "carbon", "embodied", "1f9136ac")
    assert text.returncode == 0, text.stderr
    assert "the whole machine's (the run's allocation was not recorded" in " ".join(
        text.stdout.split()
    )
