"""Distributed benchmark (issue 17 §1): is a DDP job's machine energy counted once, and what
does tracking cost each rank?

For each world size (2 and 4 ranks, interleaved, ``--repeats`` times) a real DDP job
(benchmarks/ddp_job.py: gloo on 127.0.0.1, an MLP on the bundled digits, every rank inside
``with wattwise.track()``) runs on a fake powercap tree driven at constant power (RAPL is
absent here; the fake makes machine scope exact). A single machine-scope tracker in this
process reads the same tree over the whole job. Figures:

* **double counting**: the run's host energy against the single tracker's energy over the
  host member's interval (goal: within 2 %); and what one machine-scope tracker per rank
  would have summed (the ranks' member durations x the machine's power), for contrast;
* **process shares**: the ranks' process shares summed, as a fraction of the host's;
* **sampler cost per rank**: CPU seconds of each rank's wattwise threads (sampler +
  flusher) per sampling tick, and the share of one core that is at the default 1 s period.

Run:  python benchmarks/bench_distributed.py [--repeats 3] [--steps 300] [--interval 0.05]
      [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from wattwise._records import MemberRole, RunResult
from wattwise.meters._rapl import RaplMeter
from wattwise.store import RunStore
from wattwise.testing import FakePowercap
from wattwise.tracking import Tracker

JOB = Path(__file__).resolve().parent / "ddp_job.py"
PACKAGE_W, DRAM_W = 40.0, 6.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _energy_between(ref: RunResult, start_s: float, end_s: float) -> float:
    """The reference's counted energy in [start_s, end_s] (s after its own start)."""
    counted = {c.name for c in ref.components if c.counted}
    total = 0.0
    for s in ref.samples:
        if s.component in counted and s.energy_j is not None and s.t_end_s > s.t_start_s:
            overlap = min(s.t_end_s, end_s) - max(s.t_start_s, start_s)
            if overlap > 0:
                total += s.energy_j * overlap / (s.t_end_s - s.t_start_s)
    return total


def one_job(world: int, steps: int, interval: float, work: Path) -> dict[str, Any]:
    fake = FakePowercap(work / "sys")
    pkg = fake.add_socket(core=False, dram=True)
    store = work / "runs.sqlite"
    env = {**os.environ, "WATTWISE_STORE": str(store), "WATTWISE_POWERCAP_ROOT": str(fake.root)}
    env.pop("WATTWISE_RUN_ID", None)
    port = _port()
    ref = Tracker(
        "reference",
        meters=[RaplMeter(root=fake.root)],
        store=False,
        interval_s=0.05,
        emissions=False,
    )
    with fake.drive({pkg: PACKAGE_W, f"{pkg}:0": DRAM_W}), ref:
        procs = [
            subprocess.Popen(
                [sys.executable, str(JOB), "--steps", str(steps), "--interval", str(interval)],
                env={
                    **env,
                    "RANK": str(r),
                    "LOCAL_RANK": str(r),
                    "WORLD_SIZE": str(world),
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                },
                stdout=subprocess.PIPE,
                text=True,
            )
            for r in range(world)
        ]
        lines = [json.loads(p.communicate()[0].splitlines()[-1]) for p in procs]
    assert ref.result is not None
    with RunStore.open(str(store), read_only=True) as opened:
        (listed,) = opened.list_runs()
        run = opened.get_run(listed.run_id)
    (host,) = [m for m in run.members if m.role is MemberRole.HOST]
    start = run.started_at + timedelta(seconds=host.offset_s) - ref.result.started_at
    a = start.total_seconds()
    single = _energy_between(ref.result, a, a + host.duration_s)
    power = single / host.duration_s
    ranks = [m for m in run.members if m.role is MemberRole.RANK]
    return {
        "world_size": world,
        "host_energy_j": run.energy_j,
        "single_tracker_j": single,
        "ratio": run.energy_j / single,
        "per_rank_machine_trackers_j": sum(m.duration_s for m in run.members) * power,
        "ranks_share_of_host": sum(m.energy_j for m in ranks) / run.energy_j,
        "cpu_s_per_tick": [
            ln["tracker_cpu_s"] / max(1.0, ln["elapsed_s"] / interval) for ln in lines
        ],
        "duration_s": run.duration_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        for world in (2, 4):  # interleaved
            with tempfile.TemporaryDirectory() as tmp:
                r = one_job(world, args.steps, args.interval, Path(tmp))
            results.append(r)
            print(
                f"repeat {rep + 1} world {world}: host {r['host_energy_j']:.2f} J, single "
                f"tracker {r['single_tracker_j']:.2f} J, ratio {r['ratio']:.4f}, one tracker "
                f"per rank {r['per_rank_machine_trackers_j']:.2f} J, ranks' shares "
                f"{r['ranks_share_of_host']:.1%} of the host",
                flush=True,
            )
    summary = {}
    for world in (2, 4):
        rs = [r for r in results if r["world_size"] == world]
        errors = [abs(r["ratio"] - 1) for r in rs]
        ticks = [c for r in rs for c in r["cpu_s_per_tick"]]
        summary[world] = {
            "median_ratio": statistics.median(r["ratio"] for r in rs),
            "worst_error": max(errors),
            "goal_met": max(errors) <= 0.02,
            "median_per_rank_trackers_ratio": statistics.median(
                r["per_rank_machine_trackers_j"] / r["single_tracker_j"] for r in rs
            ),
            "max_ranks_share_of_host": max(r["ranks_share_of_host"] for r in rs),
            "median_cpu_ms_per_tick": 1e3 * statistics.median(ticks),
            "worst_cpu_ms_per_tick": 1e3 * max(ticks),
        }
        s = summary[world]
        print(
            f"{world} ranks: host/single median {s['median_ratio']:.4f}, worst error "
            f"{s['worst_error']:.2%} (goal <= 2 %: {'met' if s['goal_met'] else 'MISSED'}); "
            f"one machine tracker per rank would count {s['median_per_rank_trackers_ratio']:.2f}x; "
            f"ranks' shares <= {s['max_ranks_share_of_host']:.1%} of the host; sampler "
            f"{s['median_cpu_ms_per_tick']:.2f} ms CPU per tick per rank (worst "
            f"{s['worst_cpu_ms_per_tick']:.2f}), i.e. {s['median_cpu_ms_per_tick'] / 10:.3f} % "
            f"of a core at the default 1 s",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
