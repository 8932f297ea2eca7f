"""Overhead of measuring: does the sampler slow the work it measures?

What it measures (all interleaved, so drifts of the machine hit every variant alike):

1. in process: a CPU-bound training-like loop (NumPy MLP epochs) timed by itself, bare and
   inside ``wattwise.track()`` at default settings; the ratio of medians of the loop's own
   time (tracker start/stop excluded), over ``--repeats`` repetitions;
2. around a command: the same loop in a child process that prints its own loop time, bare
   and under ``wattwise run --``;
3. CodeCarbon's ``OfflineEmissionsTracker`` the same way as (1), at its default interval
   (15 s) and at 1 s, when codecarbon is importable (install it in the benchmark's own
   environment: ``pip install codecarbon``; it is not a dependency of wattwise);
4. the sampler's own CPU seconds per hour of tracking: process CPU time of an idle process
   that tracks for ``--idle-s`` seconds (default store, real SQLite), scaled to one hour.

BLAS runs single-threaded (OPENBLAS/OMP/MKL_NUM_THREADS=1, set before NumPy loads, also
for the child): on a small shared machine an oversubscribed multi-threaded BLAS makes loop
times swing by whole factors, which would drown the sampler's effect.

Run:  python benchmarks/bench_overhead.py [--repeats 7] [--loop-s 3] [--idle-s 30] [--json F]
Goal (issue 2): ratio <= 1.01 in process and around a command.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from wattwise import track
from wattwise.protocol import Protocol, schedule
from wattwise.workloads import NumpyMLP, make_blobs

LOOP_SNIPPET = """
import sys, time
from wattwise.workloads import NumpyMLP, make_blobs
x, y = make_blobs(4000, 64, 10, seed=3)
m = NumpyMLP(64, 256, 10, seed=3)
m.train_epoch(x, y)  # warm-up
n = int(sys.argv[1])
t = time.perf_counter()
for _ in range(n):
    m.train_epoch(x, y)
print(f"LOOP_S={time.perf_counter() - t:.6f}")
"""


def make_loop(target_s: float) -> tuple[Callable[[], None], int]:
    """A training-like loop calibrated to take about ``target_s`` seconds."""
    x, y = make_blobs(4000, 64, 10, seed=3)
    model = NumpyMLP(64, 256, 10, seed=3)
    model.train_epoch(x, y)
    t = time.perf_counter()
    model.train_epoch(x, y)
    per_epoch = time.perf_counter() - t
    epochs = max(1, round(target_s / per_epoch))

    def loop() -> None:
        for _ in range(epochs):
            model.train_epoch(x, y)

    return loop, epochs


def timed(loop: Callable[[], None], ctx: AbstractContextManager[Any]) -> float:
    with ctx:
        t = time.perf_counter()
        loop()
        return time.perf_counter() - t


def codecarbon_factory(interval_s: float | None) -> Callable[[], AbstractContextManager[Any]]:
    from codecarbon import OfflineEmissionsTracker

    def make() -> AbstractContextManager[Any]:
        kwargs: dict[str, Any] = {
            "country_iso_code": "DEU",
            "save_to_file": False,
            "log_level": "error",
        }
        if interval_s is not None:
            kwargs["measure_power_secs"] = interval_s
        return OfflineEmissionsTracker(**kwargs)

    return make


def in_process(repeats: int, loop_s: float, store: str) -> dict[str, Any]:
    loop, epochs = make_loop(loop_s)
    variants: dict[str, Callable[[], AbstractContextManager[Any]]] = {
        "bare": nullcontext,
        "wattwise track()": lambda: track("overhead", store=store),
    }
    try:
        variants["codecarbon default (15 s)"] = codecarbon_factory(None)
        variants["codecarbon 1 s"] = codecarbon_factory(1.0)
    except ImportError:
        print("codecarbon is not importable here: its rows are skipped", file=sys.stderr)
    times: dict[str, list[float]] = {k: [] for k in variants}
    # round-robin over the variants, per repeat (the measurement protocol's order); the
    # tracker itself is what is measured here, so each run is timed, not tracked
    for rep, name in schedule(list(variants), Protocol(repeats=repeats, warmup=0)):
        times[name].append(timed(loop, variants[name]()))
        if name == list(variants)[-1]:
            print(f"  in-process repeat {rep}/{repeats} done", file=sys.stderr)
    bare = statistics.median(times["bare"])
    return {
        "epochs_per_loop": epochs,
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "ratio_to_bare": {k: statistics.median(v) / bare for k, v in times.items()},
        "times_s": times,
    }


def around_command(repeats: int, loop_s: float, store: str) -> dict[str, Any]:
    loop, epochs = make_loop(loop_s)
    del loop
    child = [sys.executable, "-c", LOOP_SNIPPET, str(epochs)]
    wattwise_cmd = [sys.executable, "-m", "wattwise", "run", "--store", store, "--json", "--"]
    variants = {"bare": child, "wattwise run": wattwise_cmd + child}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rep, name in schedule(list(variants), Protocol(repeats=repeats, warmup=0)):
        out = subprocess.run(variants[name], capture_output=True, text=True, check=True).stdout
        line = next(s for s in out.splitlines() if s.startswith("LOOP_S="))
        times[name].append(float(line.split("=", 1)[1]))
        if name == list(variants)[-1]:
            print(f"  command repeat {rep}/{repeats} done", file=sys.stderr)
    bare = statistics.median(times["bare"])
    return {
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "ratio_to_bare": {k: statistics.median(v) / bare for k, v in times.items()},
        "times_s": times,
    }


def sampler_cpu(idle_s: float, store: str) -> dict[str, float]:
    t0 = time.process_time()
    time.sleep(idle_s)
    bare = time.process_time() - t0
    with track("sampler-cost", store=store) as tr:
        t1 = time.process_time()
        time.sleep(idle_s)
        tracked = time.process_time() - t1
    del tr
    per_hour = (tracked - bare) * 3600.0 / idle_s
    return {
        "idle_s": idle_s,
        "cpu_s_bare": bare,
        "cpu_s_tracked": tracked,
        "sampler_cpu_s_per_hour": per_hour,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--loop-s", type=float, default=3.0)
    ap.add_argument("--idle-s", type=float, default=30.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("use at least 5 repetitions")
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/bench.sqlite"
        report = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "numpy": np.__version__,
            },
            "in_process": in_process(args.repeats, args.loop_s, store),
            "around_command": around_command(args.repeats, args.loop_s, store),
            "sampler": sampler_cpu(args.idle_s, store),
        }
    for section in ("in_process", "around_command"):
        print(f"\n{section} (median loop time, ratio to bare; goal <= 1.01)")
        for name, ratio in report[section]["ratio_to_bare"].items():
            print(f"  {name:28s} {report[section]['median_s'][name]:8.3f} s  x{ratio:.4f}")
    s = report["sampler"]
    print(
        f"\nsampler CPU: {s['sampler_cpu_s_per_hour']:.2f} CPU-s per hour of tracking "
        f"(measured over {s['idle_s']:.0f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
