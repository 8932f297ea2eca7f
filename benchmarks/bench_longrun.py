"""Runs that last weeks (issue 17 §5): the tracker's memory, and reading the run back.

A simulated run of ``--days`` (default 7) at 1 Hz with 11 components — 8 GPUs, a CPU
package, its DRAM and the RAM estimate — played back by a :class:`ReplayMeter` (a 10-minute
trace, in a loop) on a :class:`wattwise.testing.FakeClock`, so a week takes minutes. The
tracker, its sampler and its flusher run as they would (every sample reaches the store, 2 s
of simulated time per flush). Measured:

1. in a child process that does only the run: its resident memory before the tracker starts
   and its peak while it runs (``ru_maxrss``, and the RSS sampled every simulated hour);
   goal: peak <= 100 MB above the start;
2. the wall time of ``wattwise runs show ID`` and ``wattwise report ID`` on that run, each a
   fresh ``python -m wattwise`` (interpreter start included), the median of ``--repeats``;
   goal: <= 5 s each.

``--store`` names the store (default: a SQLite file in a temporary directory); a
``postgresql://`` URL measures PostgreSQL. ``--json F`` writes the figures.

Run:  python benchmarks/bench_longrun.py [--days 7] [--store URL] [--repeats 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.tracking import Tracker

DAY_S = 86_400
TRACE_S = 600  # the recorded trace that is played in a loop


def components() -> list[Component]:
    """8 GPUs (NVML energy counter), a RAPL package and its DRAM, the RAM estimate."""
    gpus = [
        Component(
            f"gpu:{i}",
            ComponentKind.GPU,
            Source(Method.MEASURED, "replay of nvml"),
            True,
            str(i),
            0.05,
        )
        for i in range(8)
    ]
    return [
        *gpus,
        Component("cpu:package-0", ComponentKind.CPU, Source(Method.MEASURED, "replay of rapl")),
        Component("dram:package-0", ComponentKind.DRAM, Source(Method.MEASURED, "replay of rapl")),
        Component(
            "ram", ComponentKind.RAM, Source(Method.ESTIMATED, "replay of ram"), True, None, 0.3
        ),
    ]


def meter() -> ReplayMeter:
    comps = components()
    intervals = []
    for k, c in enumerate(comps):
        base = 250.0 if c.kind is ComponentKind.GPU else 40.0
        for t in range(TRACE_S):
            intervals.append(TraceInterval(c.name, t, t + 1.0, base + (t * (k + 3)) % 50))
    return ReplayMeter(comps, intervals, loop=True)


def child(store: str, seconds: int, out: Path) -> None:
    """The run itself, alone in this process; writes its figures to ``out``."""
    proc = psutil.Process()
    clock = FakeClock()
    with RunStore.open(store) as st:
        rss_start = proc.memory_info().rss
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t = Tracker(
            "a week", meters=[meter()], store=st, interval_s=1.0, clock=clock, emissions=False
        )
        rss_hourly = []
        began = time.perf_counter()
        with t:
            for done in range(0, seconds, 3600):
                clock.advance(min(3600, seconds - done))
                rss_hourly.append(proc.memory_info().rss)
        wall = time.perf_counter() - began
        assert t.result is not None
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        stored = len(st.get_run(t.result.run_id).components)
    out.write_text(
        json.dumps(
            {
                "run_id": t.result.run_id,
                "simulated_s": seconds,
                "samples": seconds * len(components()),
                "components_stored": stored,
                "result_timeline_points": len(t.result.samples),
                "rss_start_mb": rss_start / 1e6,
                "peak_rss_mb": peak / 1e6,
                "peak_before_start_mb": peak_before / 1e6,
                "peak_growth_mb": (peak - rss_start) / 1e6,
                "rss_end_mb": rss_hourly[-1] / 1e6,
                "rss_max_sampled_growth_mb": (max(rss_hourly) - rss_start) / 1e6,
                "wall_s": wall,
            }
        )
    )


def timed(args: list[str], repeats: int) -> dict[str, float]:
    """Median and worst wall time of a fresh ``python -m wattwise ARGS``, and its median CPU
    time (user + system: what the machine's load from others does not lengthen)."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "wattwise", *args], capture_output=True, text=True, check=False
        )
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"wattwise {' '.join(args)} failed: {done.stderr}")
    return {
        "median_s": statistics.median(walls),
        "worst_s": max(walls),
        "median_cpu_s": statistics.median(cpus),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--store", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--reread",
        metavar="CHILD_JSON",
        type=Path,
        default=None,
        help="time the reads again on the run of an earlier child (its JSON, kept beside "
        "the store as longrun-child.json) instead of recording a new one",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child(ns.child[0], int(ns.child[1]), Path(ns.child[2]))
        return
    tmp = Path(tempfile.mkdtemp(prefix="wattwise-longrun-"))
    store = ns.store or str(tmp / "runs.sqlite")
    seconds = int(ns.days * DAY_S)
    figures = ns.reread or tmp / "longrun-child.json"
    if ns.reread is None:
        subprocess.run(
            [sys.executable, __file__, "--child", store, str(seconds), str(figures)], check=True
        )
    run: dict[str, Any] = json.loads(figures.read_text())
    run_id = run["run_id"]
    results: dict[str, Any] = {
        "command": " ".join(
            ["python", "benchmarks/bench_longrun.py"]
            + ["POSTGRESQL_URL" if a.startswith("postgres") else a for a in sys.argv[1:]]
        ),
        "store": "postgresql" if store.startswith("postgres") else "sqlite",
        "run": run,
        "child_json": str(figures),
        "runs_show": timed(["runs", "show", run_id, "--store", store], ns.repeats),
        "runs_show_json": timed(["runs", "show", run_id, "--json", "--store", store], ns.repeats),
        "report": timed(
            ["report", run_id, "--out", str(tmp / "week.html"), "--store", store], ns.repeats
        ),
    }
    if not store.startswith("postgres"):
        results["store_mb"] = Path(store).stat().st_size / 1e6
    results["goals"] = {
        "memory_growth_le_100_mb": run["peak_growth_mb"] <= 100,
        "runs_show_le_5_s": results["runs_show"]["median_s"] <= 5,
        "report_le_5_s": results["report"]["median_s"] <= 5,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if ns.json is not None:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
