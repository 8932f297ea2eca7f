"""Energy prediction after epoch 2 vs the measured total, on three models.

Each (model, seed) trains in a fresh process, as a user's run would (so epoch 1 carries
the real one-time warm-up: thread pools, allocator, first kernels), on digits for
``--epochs`` epochs with no stopping rule (or on ``--dataset mnist1d``, e.g. with
``--models cnn1d``, whose epochs last 1-2 s here). After epoch 2 the loop's prediction of the
whole run (``EpochRecord.prediction``, see ``wattwise.train.predict_total``) is compared
with the run's measured total. The same comparison is made for the rule
``planned epochs x mean of the measured epochs`` (what CarbonTracker-style predictors do)
and, for both, after epoch 1. Energies come from the meters detected here, in process
scope by default, so that other work on a shared machine stays out of the figures.

The default models are sized so that one epoch on digits lasts 0.3-3 s on one CPU thread:
process scope attributes energy by the kernel's CPU-time counters, which tick every 10 ms,
so a 20-60 ms epoch (the default ``mlp`` and ``cnn`` here) would be measured to within
only 15-50 %, and machine scope on a shared machine counts other people's work. Both
small models can still be run: ``--models 'mlp;cnn' --scope machine`` on a quiet machine.

Run:  python benchmarks/bench_train_prediction.py
      [--models "mlp:depth=3,width=1024;cnn:depth=3,width=64;resnet18"]
      [--dataset digits|mnist1d] [--seeds 0,1,2] [--epochs 20] [--threads 1]
      [--scope process] [--json F]
Goal (issues 4, 14): prediction after epoch 2 within 10 % of the actual total, judged
(median and worst case) on the runs whose median epoch lasts >= 1 s; the other runs are
printed and summarised for reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The goal is judged on runs whose epochs last at least this long, in s (issue 14).
MIN_EPOCH_S = 1.0


def child(model_spec: str, seed: int, epochs: int, threads: int, scope: str, dataset: str) -> None:
    """One run; prints a JSON line with its epochs, predictions and total."""
    import torch

    from wattwise.tracking._tracker import Tracker
    from wattwise.train import fit
    from wattwise.workloads import build_model, load_dataset

    torch.set_num_threads(threads)
    data = load_dataset(dataset)
    torch.manual_seed(seed)
    model = build_model(model_spec, input_shape=data.input_shape, num_classes=data.num_classes)
    tracker = Tracker(f"bench {model_spec}", scope=scope, store=False)
    r = fit(model, data, epochs=epochs, seed=seed, device="cpu", tracker=tracker)
    out = {
        "epochs": [e.energy_j for e in r.epochs],
        "durations_s": [e.duration_s for e in r.epochs],
        "predictions": [
            {"total_j": e.prediction.total_j, "sigma_j": e.prediction.sigma_j}
            for e in r.epochs
            if e.prediction is not None
        ],
        "total_j": r.total_energy_j,
        "source": r.energy_source,
        "val_accuracy": r.final_val_accuracy,
    }
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp:depth=3,width=1024;cnn:depth=3,width=64;resnet18")
    ap.add_argument("--dataset", default="digits", help="digits (default) or mnist1d")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scope", default="process", help="process (default) or machine")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(
            args.child[0], int(args.child[1]), args.epochs, args.threads, args.scope, args.dataset
        )
        return

    rows: list[dict[str, Any]] = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for model in args.models.split(";"):
            cmd = [
                sys.executable, __file__, "--child", model, str(seed),
                "--epochs", str(args.epochs), "--threads", str(args.threads), "--scope", args.scope,
                "--dataset", args.dataset,
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
            r = json.loads(line[len("RESULT ") :])
            e, total, n = r["epochs"], r["total_j"], args.epochs
            ours2 = r["predictions"][1]
            row = {
                "model": model,
                "seed": seed,
                "total_j": total,
                "epoch_1_j": e[0],
                "epoch_2_j": e[1],
                "later_epoch_median_j": statistics.median(e[2:]),
                "later_epoch_median_s": statistics.median(r["durations_s"][2:]),
                "ours_after_2_j": ours2["total_j"],
                "ours_after_2_sigma_j": ours2["sigma_j"],
                "ours_after_2_error": ours2["total_j"] / total - 1.0,
                "ours_after_2_within_2sigma": abs(ours2["total_j"] - total) <= 2 * ours2["sigma_j"],
                "ours_after_1_error": r["predictions"][0]["total_j"] / total - 1.0,
                "mean_rule_after_2_error": n * (e[0] + e[1]) / 2 / total - 1.0,
                "mean_rule_after_1_error": n * e[0] / total - 1.0,
                "source": r["source"],
                "val_accuracy": r["val_accuracy"],
            }
            rows.append(row)
            print(
                f"{model:>22} seed {seed}: total {total:8.2f} J | epoch 1 {e[0]:.3f} J, "
                f"epoch 2 {e[1]:.3f} J, later median {row['later_epoch_median_j']:.3f} J "
                f"{row['later_epoch_median_s']:.2f} s | "
                f"after epoch 2: ours {100 * row['ours_after_2_error']:+6.1f} % "
                f"(±{100 * ours2['sigma_j'] / total:.1f} % 1σ), "
                f"epochs x mean {100 * row['mean_rule_after_2_error']:+6.1f} % | "
                f"after epoch 1: ours {100 * row['ours_after_1_error']:+6.1f} %, "
                f"epochs x mean {100 * row['mean_rule_after_1_error']:+6.1f} %",
                flush=True,
            )
    summary: dict[str, Any] = {
        "dataset": args.dataset,
        "models": args.models.split(";"),
        "epochs": args.epochs,
        "threads": args.threads,
        "scope": args.scope,
        "energy_source": rows[0]["source"],
        "goal": "after epoch 2, within 10 % of the actual total",
    }
    for key in ("ours_after_2", "mean_rule_after_2", "ours_after_1", "mean_rule_after_1"):
        errs = [abs(r[f"{key}_error"]) for r in rows]
        summary[f"{key}_median_abs_error"] = statistics.median(errs)
        summary[f"{key}_max_abs_error"] = max(errs)
    summary["ours_after_2_share_within_10pct"] = sum(
        abs(r["ours_after_2_error"]) <= 0.10 for r in rows
    ) / len(rows)
    summary["ours_after_2_share_within_2sigma"] = sum(
        r["ours_after_2_within_2sigma"] for r in rows
    ) / len(rows)
    # The goal is judged on the workloads whose epochs last >= 1 s (issue 14): shorter
    # epochs are measured to within the 10 ms CPU-time tick and the shared machine's noise.
    long = [r for r in rows if r["later_epoch_median_s"] >= MIN_EPOCH_S]
    summary["judged_on"] = f"runs whose median epoch lasts >= {MIN_EPOCH_S:g} s"
    summary["judged_runs"] = len(long)
    if long:
        errs = [abs(r["ours_after_2_error"]) for r in long]
        summary["long_epochs_ours_after_2_median_abs_error"] = statistics.median(errs)
        summary["long_epochs_ours_after_2_max_abs_error"] = max(errs)
    summary["goal_met"] = bool(long) and summary["long_epochs_ours_after_2_max_abs_error"] <= 0.10
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
