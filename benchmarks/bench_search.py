"""Energy of search strategies to reach a target accuracy, against grid search's total.

MNIST-1D, its 1-D CNN and the built-in space (``cnn1d``: a 16-point grid, 9 epochs a full
trial, Hyperband's and ASHA's rungs at 1, 3 and 9 epochs; the other strategies search the
ranges; ``--dataset digits --model cnn`` for the old workload), the same trial budget for
every strategy, repeated with
different sampler seeds; strategies interleave within each repeat. The target is grid
search's best validation accuracy (mean over the repeats) minus 0.5 percentage points.
For each strategy: best accuracy found, the whole search's energy, and the energy spent when
its best accuracy first reached the target, as a ratio of grid search's total energy (the
issue's goal: <= 0.35 for Hyperband, ASHA and TPE). Medians over repeats count a repeat
that never reached the target as infinite.

Energy is what this machine's meters give, at process scope so that other programs' load
is not counted; PyTorch runs on one thread so that other programs' load does not change
how the work is split. On a machine without RAPL or NVML it is the CPU *estimate*.

Usage::

    python benchmarks/bench_search.py [--dataset mnist1d] [--model cnn1d] [--trials 16]
        [--repeats 3] [--strategies grid,random,tpe,gp,hyperband,asha] [--store DB]
        [--json OUT] [--write-docs]

With ``--store DB`` the comparison is kept as a ``sweep-compare`` study there:
``wattwise report --study ID --store DB --out r.html`` draws its anytime curves.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from wattwise._records import load_record
from wattwise.protocol import LeverContext
from wattwise.search import (
    COMPARE_PROTOCOL,
    Comparison,
    Workload,
    builtin_space,
    compare_strategies,
)
from wattwise.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "search.md"
BEGIN, END = "<!-- bench_search:begin -->", "<!-- bench_search:end -->"
GOAL = 0.35
GOAL_STRATEGIES = ("hyperband", "asha", "tpe")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(c: Comparison) -> str:
    rows = [
        "| strategy | best accuracy (mean; min–max) | search energy | energy to target "
        "(median) | ÷ grid total | reached | epochs trained | trials c/p/f |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in c.strategies:
        accs = [r.best_accuracy for r in s.repeats if r.best_accuracy is not None]
        n = len(s.repeats)
        counts = "/".join(
            f"{statistics.fmean(r.count(state) for r in s.repeats):.3g}"
            for state in ("complete", "pruned", "fail")
        )
        to_target = f"{s.energy_to_target_j:.1f} J" if s.energy_to_target_j is not None else "never"
        ratio = s.energy_to_target_vs_grid_total
        rows.append(
            f"| {s.strategy} | {statistics.fmean(accs):.4f}; {min(accs):.4f}–{max(accs):.4f} "
            f"| {s.total_energy_j:.1f} J | {to_target} | "
            f"{f'{ratio:.2f}' if ratio is not None else '—'} | {s.target_reached_repeats}/{n} | "
            f"{statistics.fmean(r.epochs for r in s.repeats):.0f} | {counts} |"
        )
    return "\n".join(rows)


def verdicts(c: Comparison) -> list[str]:
    out = []
    for name in GOAL_STRATEGIES:
        try:
            s = c.strategy(name)
        except KeyError:
            continue
        ratio = s.energy_to_target_vs_grid_total
        if ratio is None:
            out.append(f"{name}: MISSES the goal: the median repeat never reached the target")
        else:
            word = "meets" if ratio <= GOAL else "MISSES"
            out.append(f"{name}: {ratio:.2f} of grid's total energy: {word} the goal <= {GOAL}")
    return out


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(doc):
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} section")
    DOCS.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", doc), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--model", default="cnn1d")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategies", default="grid,random,tpe,gp,hyperband,asha")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", help="run store (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, help="write the comparison's JSON here")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument(
        "--from-study", help="print a comparison stored in --store before (no new search)"
    )
    args = parser.parse_args()
    if args.from_study:
        with RunStore.open(args.store) as st:
            stored = load_record(st.get_study(args.from_study).results or {})
        assert isinstance(stored, Comparison)
        print(table(stored) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(stored)))
        if args.json:
            args.json.write_text(json.dumps(stored.to_dict(), indent=1, default=str))
        return 0

    torch.set_num_threads(1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = tempfile.TemporaryDirectory()
    store = RunStore.open(args.store or str(Path(tmp.name) / "bench.sqlite"))
    space = builtin_space(args.model)
    load_before = os.getloadavg()
    t0 = time.monotonic()
    done = [0]

    def progress(strategy: str, repeat: int, trial: object) -> None:
        done[0] += 1
        if done[0] % 16 == 0:
            print(f"  {done[0]} trials, {time.monotonic() - t0:.0f} s", file=sys.stderr)

    c = compare_strategies(
        Workload(dataset=args.dataset, model=args.model, device="cpu", seed=0),
        space,
        strategies=args.strategies,
        trials=args.trials,
        protocol=replace(COMPARE_PROTOCOL, repeats=args.repeats, seed=args.seed),
        on_trial=progress,
        context=LeverContext.of(store=store, scope="process"),
    )
    wall = time.monotonic() - t0
    load_after = os.getloadavg()
    if args.json:  # first, so that nothing below can lose the figures
        args.json.write_text(json.dumps(c.to_dict(), indent=1, default=str))
    command = (
        f"python benchmarks/bench_search.py --dataset {args.dataset} --model {args.model} "
        f"--trials {args.trials} --repeats {args.repeats} "
        f"--strategies {args.strategies} --seed {args.seed}"
    )
    header = [
        f"Command: `{command}`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, shared with other work (load "
        f"average {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end); "
        f"PyTorch on 1 thread; {wall:.0f} s in all.",
        "",
        f"Energy: {c.energy_source}, {c.scope} scope. Target: {c.target_accuracy:.4f} "
        f"({c.target_source}). {args.trials} trials per search, {args.repeats} repeats "
        f"(sampler seeds {args.seed}–{args.seed + args.repeats - 1}). Study: "
        f"{c.study_id or 'not stored'}.",
        "",
        "",
    ]
    text = "\n".join(header) + table(c) + "\n\n" + "\n".join(f"- {v}" for v in verdicts(c))
    print(text)
    if args.write_docs:
        write_docs(text)
    store.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
