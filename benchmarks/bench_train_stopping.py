"""Stopping rules against the hindsight oracle: energy and accuracy of a stopped run.

For each dataset (``digits`` with the small ``cnn``, ``mnist1d`` with ``cnn1d``) and seed,
one full run of ``--epochs`` (60) epochs is trained (batch 64, Adam 1e-3, one CPU thread,
process scope by default: this process's share of the machine, so other work on a shared
machine stays out). From it:

* the **hindsight oracle**: the earliest epoch whose validation accuracy is within 1 pp of
  the full run's final accuracy (known only after the full run);
* each stopping rule, **replayed** on the recorded epochs: after each epoch ``k`` the rule
  sees exactly what the training loop would show it (the first ``k`` epoch records, the
  energy spent, the energy prediction), and the first epoch at which it gives a reason is
  where it would have stopped. Training is deterministic per seed on the CPU, so a run
  stopped by the rule is the full run's first epochs: replaying saves training each
  variant again. The benchmark checks that claim on the first seed of each dataset by a
  real run stopped by the default rule (its stop epoch and accuracy must match the
  replay; its measured energy is printed beside the replay's).

Energy to epoch ``k`` is the sum of the measured energies of epochs 1..k (the set-up
before epoch 1 is the same for every variant and left out, which makes the ratios to the
oracle stricter). Figures: stopped energy / oracle energy, accuracy lost against the full
run (pp), energy saved against the full run.

Run:  python benchmarks/bench_train_stopping.py [--datasets digits,mnist1d]
      [--seeds 0,1,2,3,4] [--epochs 60] [--threads 1] [--scope process] [--json F]
Goal (issue 14), for the default rule (``LearningCurve()``: ``curve`` on the CLI), median
over the seeds on each dataset: energy <= 1.25x the oracle's, accuracy within 1 pp of the
full run's. The plateau rule (``Plateau()``, patience 5) is replayed for reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from wattwise.protocol import LeverContext
from wattwise.tracking import Scope
from wattwise.train import (
    EpochRecord,
    FitResult,
    LearningCurve,
    Plateau,
    StopContext,
    StopRule,
    fit,
)
from wattwise.workloads import build_model, load_dataset

MODELS = {"digits": "cnn", "mnist1d": "cnn1d"}
#: The oracle's accuracy margin, in accuracy (1 pp).
ORACLE_MARGIN = 0.01


def train(dataset: str, seed: int, epochs: int, stop: list[StopRule], scope: str) -> FitResult:
    data = load_dataset(dataset)
    torch.manual_seed(seed)
    model = build_model(MODELS[dataset], input_shape=data.input_shape, num_classes=data.num_classes)
    return fit(
        model,
        data,
        epochs=epochs,
        stop=stop,
        seed=seed,
        device="cpu",
        context=LeverContext(store=False, scope=Scope(scope)),
    )


def replay(rule: StopRule, epochs: list[EpochRecord], planned: int) -> tuple[int, str | None]:
    """The epoch at which ``rule`` stops a run with these epochs (``planned``: no stop)."""
    for k in range(1, planned):
        history = epochs[:k]
        prediction = history[-1].prediction
        assert prediction is not None
        spent = sum(e.energy_j for e in history)
        reason = rule.check(StopContext(history, planned, spent, prediction))
        if reason is not None:
            return k, reason
    return planned, None


def oracle_epoch(accuracies: list[float]) -> int:
    final = accuracies[-1]
    return next(i for i, a in enumerate(accuracies, 1) if a >= final - ORACLE_MARGIN)


def summarise(rows: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    ratio = [r[f"{prefix}_energy_over_oracle"] for r in rows]
    lost = [r[f"{prefix}_accuracy_lost_pp"] for r in rows]
    saved = [r[f"{prefix}_saved_vs_full_share"] for r in rows]
    return {
        f"{prefix}_median_energy_over_oracle": statistics.median(ratio),
        f"{prefix}_worst_energy_over_oracle": max(ratio),
        f"{prefix}_median_accuracy_lost_pp": statistics.median(lost),
        f"{prefix}_worst_accuracy_lost_pp": max(lost),
        f"{prefix}_median_saved_vs_full_share": statistics.median(saved),
        f"{prefix}_least_saved_vs_full_share": min(saved),
    }


def run_dataset(dataset: str, seeds: list[int], args: argparse.Namespace) -> dict[str, Any]:
    rules: dict[str, StopRule] = {"curve": LearningCurve(), "plateau": Plateau()}
    rows: list[dict[str, Any]] = []
    check: dict[str, Any] = {}
    for i, seed in enumerate(seeds):
        full = train(dataset, seed, args.epochs, [], args.scope)
        acc = [e.val_accuracy for e in full.epochs]
        energy = [e.energy_j for e in full.epochs]

        def upto(k: int, energy: list[float] = energy) -> float:
            return sum(energy[:k])

        k_oracle = oracle_epoch(acc)
        row: dict[str, Any] = {
            "seed": seed,
            "full_val_accuracy": acc[-1],
            "full_energy_j": upto(len(energy)),
            "oracle_epoch": k_oracle,
            "oracle_energy_j": upto(k_oracle),
            "median_epoch_s": statistics.median(e.duration_s for e in full.epochs),
            "energy_source": full.energy_source,
            "val_accuracy": acc,
        }
        for label, rule in rules.items():
            k, reason = replay(rule, list(full.epochs), args.epochs)
            row[f"{label}_epoch"] = k
            row[f"{label}_reason"] = reason
            row[f"{label}_energy_j"] = upto(k)
            row[f"{label}_energy_over_oracle"] = upto(k) / upto(k_oracle)
            row[f"{label}_accuracy_lost_pp"] = 100 * (acc[-1] - acc[k - 1])
            row[f"{label}_saved_vs_full_share"] = 1 - upto(k) / upto(len(energy))
        if i == 0:
            real = train(dataset, seed, args.epochs, [LearningCurve()], args.scope)
            real_energy = sum(e.energy_j for e in real.epochs)
            check = {
                "seed": seed,
                "replayed_epoch": row["curve_epoch"],
                "real_epoch": len(real.epochs),
                "replayed_val_accuracy": acc[row["curve_epoch"] - 1],
                "real_val_accuracy": real.final_val_accuracy,
                "replayed_energy_j": row["curve_energy_j"],
                "real_energy_j": real_energy,
                "real_reason": real.stop_reason,
            }
            check["matches"] = (
                check["real_epoch"] == check["replayed_epoch"]
                and check["real_val_accuracy"] == check["replayed_val_accuracy"]
            )
            print(
                f"{dataset} seed {seed}: real stopped run {check['real_epoch']} epochs, "
                f"acc {check['real_val_accuracy']:.4f}, {real_energy:.2f} J | replay "
                f"{check['replayed_epoch']} epochs, acc {check['replayed_val_accuracy']:.4f}, "
                f"{check['replayed_energy_j']:.2f} J | matches: {check['matches']}",
                flush=True,
            )
        rows.append(row)
        print(
            f"{dataset} seed {seed}: full {args.epochs} ep {row['full_energy_j']:.2f} J acc "
            f"{acc[-1]:.4f} ({row['median_epoch_s']:.2f} s/epoch) | oracle epoch {k_oracle} "
            f"{row['oracle_energy_j']:.2f} J | "
            + " | ".join(
                f"{label} epoch {row[f'{label}_epoch']} "
                f"{row[f'{label}_energy_over_oracle']:.2f}x oracle, "
                f"lost {row[f'{label}_accuracy_lost_pp']:+.2f} pp, "
                f"saved {100 * row[f'{label}_saved_vs_full_share']:.1f} % of full"
                for label in rules
            ),
            flush=True,
        )
        print(f"    why: {row['curve_reason']}", flush=True)
    summary: dict[str, Any] = {
        "dataset": dataset,
        "model": MODELS[dataset],
        "seeds": seeds,
        "energy_source": rows[0]["energy_source"],
        **summarise(rows, "curve"),
        **summarise(rows, "plateau"),
        "replay_check": check,
    }
    summary["goal_met"] = (
        summary["curve_median_energy_over_oracle"] <= 1.25
        and summary["curve_median_accuracy_lost_pp"] <= 1.0
    )
    return {"runs": rows, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,mnist1d")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scope", default="process", help="process (default) or machine")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    out: dict[str, Any] = {
        "epochs": args.epochs,
        "threads": args.threads,
        "scope": args.scope,
        "goal": "median: energy <= 1.25x the oracle's, accuracy within 1 pp of the full run's",
    }
    train("digits", 99, 2, [], args.scope)  # process warm-up (thread pools), not counted
    for dataset in args.datasets.split(","):
        out[dataset] = run_dataset(dataset, seeds, args)
        print(json.dumps(out[dataset]["summary"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
