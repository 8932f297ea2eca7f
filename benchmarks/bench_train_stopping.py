"""Stopping at a plateau vs the full planned run: energy saved, accuracy lost.

For each seed, the same training (digits, the small built-in CNN, 40 epochs planned,
batch 64, Adam 1e-3) runs twice in this process, interleaved: once for all 40 epochs (the
baseline), once with the default plateau rule (``Plateau()``: patience 5 epochs, min
delta 0.001). Training is deterministic per seed on the CPU, so the stopped run's epochs
are the baseline's first epochs: the accuracy lost is the baseline's final validation
accuracy minus the stopped run's. Energies come from the meters detected here (each
figure's source is printed) and both runs are measured in this same process, in process
scope by default: this process's share of the machine, so other work on a shared machine
stays out (at the 10 ms resolution of the kernel's CPU-time counters, well below 1 % of
these runs); ``--scope machine`` counts everything.

The stopped run also predicts the full run's energy from its own epochs; the
benchmark reports that prediction against the measured baseline.

For reference it also runs a third variant stopping at ``TargetAccuracy(0.95)``; the goal
is judged on the plateau rule only.

Run:  python benchmarks/bench_train_stopping.py [--seeds 0,1,2,3,4] [--epochs 40]
      [--threads 1] [--scope process] [--json F]
Goal (issue 4): >= 50 % energy saved for <= 1 pp validation accuracy lost.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from wattwise.tracking._tracker import Tracker
from wattwise.train import FitResult, Plateau, TargetAccuracy, fit
from wattwise.workloads import build_model, load_dataset


def one(
    seed: int, epochs: int, plateau: bool, target: float | None = None, scope: str = "process"
) -> FitResult:
    data = load_dataset("digits")
    torch.manual_seed(seed)
    model = build_model("cnn", input_shape=data.input_shape, num_classes=data.num_classes)
    return fit(
        model,
        data,
        epochs=epochs,
        stop=[Plateau()] if plateau else [TargetAccuracy(target)] if target else [],
        seed=seed,
        device="cpu",
        tracker=Tracker(f"bench stopping seed {seed}", scope=scope, store=False),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scope", default="process", help="process (default) or machine")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]

    one(99, 2, False)  # process warm-up (thread pools, allocator), not counted
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        full = one(seed, args.epochs, plateau=False, scope=args.scope)
        stopped = one(seed, args.epochs, plateau=True, scope=args.scope)
        # For reference only (the goal is about the default plateau rule): a target.
        target = one(seed, args.epochs, plateau=False, target=0.95, scope=args.scope)
        assert full.final_val_accuracy is not None and stopped.final_val_accuracy is not None
        saved = 1.0 - stopped.total_energy_j / full.total_energy_j
        predicted = stopped.prediction.total_j if stopped.prediction else stopped.total_energy_j
        rows.append(
            {
                "seed": seed,
                "full_epochs": len(full.epochs),
                "full_energy_j": full.total_energy_j,
                "full_val_accuracy": full.final_val_accuracy,
                "stopped_epochs": len(stopped.epochs),
                "stopped_energy_j": stopped.total_energy_j,
                "stopped_val_accuracy": stopped.final_val_accuracy,
                "energy_saved_share": saved,
                "accuracy_lost_pp": 100 * (full.final_val_accuracy - stopped.final_val_accuracy),
                "predicted_full_energy_j": predicted,
                "prediction_error_share": predicted / full.total_energy_j - 1.0,
                "energy_source": full.energy_source,
                "target_0.95_epochs": len(target.epochs),
                "target_0.95_energy_saved_share": 1.0 - target.total_energy_j / full.total_energy_j,
                "target_0.95_accuracy_lost_pp": 100
                * (full.final_val_accuracy - (target.final_val_accuracy or 0.0)),
            }
        )
        r = rows[-1]
        print(
            f"seed {seed}: full {r['full_epochs']} ep {r['full_energy_j']:.2f} J "
            f"acc {r['full_val_accuracy']:.4f} | plateau {r['stopped_epochs']} ep "
            f"{r['stopped_energy_j']:.2f} J acc {r['stopped_val_accuracy']:.4f} | "
            f"saved {100 * r['energy_saved_share']:.1f} %, lost {r['accuracy_lost_pp']:+.2f} pp | "
            f"predicted full {r['predicted_full_energy_j']:.2f} J "
            f"({100 * r['prediction_error_share']:+.1f} % vs measured) | target 0.95: "
            f"{r['target_0.95_epochs']} ep, "
            f"saved {100 * r['target_0.95_energy_saved_share']:.1f} %, "
            f"lost {r['target_0.95_accuracy_lost_pp']:+.2f} pp",
            flush=True,
        )
    summary = {
        "seeds": seeds,
        "energy_source": rows[0]["energy_source"],
        "threads": args.threads,
        "scope": args.scope,
        "median_energy_saved_share": statistics.median(r["energy_saved_share"] for r in rows),
        "median_accuracy_lost_pp": statistics.median(r["accuracy_lost_pp"] for r in rows),
        "max_accuracy_lost_pp": max(r["accuracy_lost_pp"] for r in rows),
        "median_prediction_error_share": statistics.median(
            r["prediction_error_share"] for r in rows
        ),
        "reference_target_0.95_median_saved_share": statistics.median(
            r["target_0.95_energy_saved_share"] for r in rows
        ),
        "reference_target_0.95_median_lost_pp": statistics.median(
            r["target_0.95_accuracy_lost_pp"] for r in rows
        ),
        "goal": ">= 50 % saved for <= 1 pp lost (default plateau rule)",
    }
    summary["goal_met"] = (
        summary["median_energy_saved_share"] >= 0.5 and summary["median_accuracy_lost_pp"] <= 1.0
    )
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
