"""`wattwise runs show` (text) and the run report say what the run was given: its recorded
allocation, in real child processes over real SQLite stores."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from tests._cli import wattwise

from wattwise._records import RunAllocation
from wattwise.tracking._members import RUN_ENV_VAR

QUICK = "pass"
V2 = Path(__file__).parent / "data" / "store-v2.sqlite"


@pytest.fixture
def env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    out = dict(child_env)
    out["WATTWISE_STORE"] = str(tmp_path / "runs.sqlite")
    out["COLUMNS"] = "400"  # one summary line per line, whatever the terminal
    for name in ("CUDA_VISIBLE_DEVICES", "RANK", "WORLD_SIZE", RUN_ENV_VAR):
        out.pop(name, None)
    for name in [k for k in out if k.startswith("SLURM_")]:
        out.pop(name)
    return out


def _run(env: dict[str, str], code: str = QUICK) -> str:
    proc = wattwise(env, "run", "--json", "--", sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["run_id"])


def _line(text: str, start: str) -> str:
    """The one line starting with ``start`` (the run's ``allocation`` line is not a
    member's ``allocation of``)."""
    lines = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip().startswith(start)
        and (start.startswith("allocation of") or not ln.strip().startswith("allocation of"))
    ]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.slow
def test_runs_show_and_the_report_say_what_a_slurm_run_was_given(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "no-cgroup").mkdir()
    job = dict(
        env,
        WATTWISE_CGROUP_ROOT=str(tmp_path / "no-cgroup"),
        SLURM_JOB_ID="4242",
        SLURM_CPUS_ON_NODE="1",
        SLURM_MEM_PER_NODE="512",
        CUDA_VISIBLE_DEVICES="0,1",
    )
    run_id = _run(job)
    # Read later, outside the job: what was recorded, not today's environment.
    shown = wattwise(env, "runs", "show", run_id[:8])
    assert shown.returncode == 0, shown.stderr
    machine_cpus = psutil.cpu_count() or 1
    machine_gib = f"{psutil.virtual_memory().total / 2**30:.3g} GiB"
    assert _line(shown.stdout, "allocation") == (
        f"allocation 1 of {machine_cpus} logical CPUs (SLURM, 1 CPUs), memory limit 0.5 GiB "
        f"of {machine_gib} (SLURM_MEM_PER_NODE / SLURM_MEM_PER_CPU), GPUs 0,1 "
        "(CUDA_VISIBLE_DEVICES)"
    )
    out = tmp_path / "run.md"
    report = wattwise(env, "report", run_id[:8], "--out", str(out))
    assert report.returncode == 0, report.stderr
    flat = " ".join(out.read_text().replace("\\", "").split())
    assert (
        f"Allocation (what the run was given, recorded at its start): 1 of {machine_cpus} "
        "logical CPUs (SLURM, 1 CPUs), memory limit 0.5 GiB" in flat
    )


@pytest.mark.slow
def test_a_run_stored_before_schema_3_says_its_allocation_was_not_recorded(
    env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "old.sqlite"
    shutil.copy(V2, store)
    old = dict(env, WATTWISE_STORE=str(store))
    assert wattwise(old, "runs", "upgrade").returncode == 0
    shown = wattwise(old, "runs", "show", "1f9136ac")
    assert shown.returncode == 0, shown.stderr
    expected = "allocation not recorded (a run stored before schema version 3)"
    assert _line(shown.stdout, "allocation") == expected
    out = tmp_path / "old.html"
    assert wattwise(old, "report", "1f9136ac", "--out", str(out)).returncode == 0
    assert "recorded at its start): not recorded (a run stored before schema" in out.read_text()


@pytest.mark.slow
def test_markup_in_a_recorded_source_is_printed_as_it_is(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The memory limit's source names the cgroup's directory: a name Rich would read as
    markup is printed literally."""
    cgroup = tmp_path / "[bold]job[/bold]"  # two directories: "[bold]job[" and "bold]"
    cgroup.mkdir(parents=True)
    (cgroup / "cgroup.controllers").write_text("cpu memory\n")
    (cgroup / "cpu.max").write_text("max 100000\n")
    (cgroup / "memory.max").write_text(f"{2**30}\n")
    (cgroup / "memory.current").write_text(f"{2**28}\n")
    run_id = _run(dict(env, WATTWISE_CGROUP_ROOT=str(cgroup)))
    shown = wattwise(env, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    line = _line(shown.stdout, "allocation")
    assert f"memory limit 1 GiB of {psutil.virtual_memory().total / 2**30:.3g} GiB" in line
    assert f"(cgroup memory.max of {cgroup})" in line and "[bold]job[/bold]" in line


CHILD = """
import os
os.environ["CUDA_VISIBLE_DEVICES"] = ""
import wattwise
with wattwise.track("inner", interval_s=0.05):
    sum(i * i for i in range(100_000))
"""


@pytest.mark.slow
def test_a_member_given_other_than_the_run_has_its_own_allocation_line(
    env: dict[str, str],
) -> None:
    run_id = _run(env, CHILD)
    shown = wattwise(env, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    run_line = _line(shown.stdout, "allocation")
    assert "every GPU of the machine (no CUDA_VISIBLE_DEVICES" in run_line
    member = json.loads(wattwise(env, "runs", "show", run_id, "--json").stdout)["members"][1]
    assert member["allocation"]["gpus"] == ""
    member_line = _line(shown.stdout, "allocation of")
    assert member_line.startswith(f"allocation of pid {member['pid']} on {member['host']}: ")
    assert member_line.endswith("no GPUs (CUDA_VISIBLE_DEVICES)")


def test_the_allocation_line_words_every_case() -> None:
    given = RunAllocation(
        cpus=1.5,
        cpus_from="cgroup cpu.max, 1.5 CPUs",
        memory_limit_bytes=4 * 2**30,
        memory_from="cgroup memory.max of /job",
        gpus="0,1",
        gpus_from="CUDA_VISIBLE_DEVICES",
        machine_logical_cpus=8,
        machine_memory_bytes=32 * 2**30,
    )
    assert given.describe() == (
        "1.5 of 8 logical CPUs (cgroup cpu.max, 1.5 CPUs), memory limit 4 GiB of 32 GiB "
        "(cgroup memory.max of /job), GPUs 0,1 (CUDA_VISIBLE_DEVICES)"
    )
    unknown_machine = replace(given, machine_memory_bytes=None)
    assert "memory limit 4 GiB (cgroup memory.max of /job)" in unknown_machine.describe()
    unlimited = replace(given, memory_limit_bytes=None, memory_from="no limit")
    assert "CPUs), no memory limit (the machine has 32 GiB), GPUs" in unlimited.describe()
    assert (
        replace(given, gpus="", gpus_from="SLURM_GPUS_ON_NODE=0")
        .describe()
        .endswith("no GPUs (SLURM_GPUS_ON_NODE=0)")
    )
    assert (
        replace(given, gpus=None, gpus_from="no list")
        .describe()
        .endswith("every GPU of the machine (no list)")
    )
