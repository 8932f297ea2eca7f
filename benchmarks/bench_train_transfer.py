"""Transfer learning vs training from scratch: energy to reach 95 % validation accuracy.

Per seed, in this process (digits, the small built-in CNN, batch 64, Adam, at most 40
epochs each, every run stopping at ``TargetAccuracy(0.95)`` on the 0-9 validation set):

* scratch: a fresh CNN trained on digits 0-9 (the baseline);
* pre-training: a fresh CNN trained on digits 0-7 until the default plateau rule stops it
  (reported separately: the model one already has, in the sAIn scenario);
* transfer: the 0-7 model's head extended to 0-9 (the 8 learned rows kept), then
  fine-tuned on 0-9, head at lr 1e-3 and the backbone at 1e-4;
* transfer, frozen backbone: the same with ``features.*`` frozen (head only).

Energies come from the meters detected here, in process scope by default (other work on
a shared machine stays out; ``--scope machine`` counts everything);
every figure's source is printed. For
reference, the energy of the epochs up to 90 % is read from the same runs.

Run:  python benchmarks/bench_train_transfer.py [--seeds 0,1,2] [--threads 1] [--scope process]
      [--json F]
Goal (issue 4): transfer <= 50 % of the from-scratch energy to reach 95 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from wattwise.tracking._tracker import Tracker
from wattwise.train import FitResult, Plateau, TargetAccuracy, extend_head, fit, freeze
from wattwise.workloads import build_model, load_dataset

TARGET = 0.95
MAX_EPOCHS = 40
LR = 1e-3


def reached(r: FitResult) -> bool:
    return r.final_val_accuracy is not None and r.final_val_accuracy >= TARGET


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scope", default="process", help="process (default) or machine")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    full = load_dataset("digits")
    first8 = load_dataset("digits", classes=tuple(range(8)))

    def run(model: torch.nn.Module, data: Any, seed: int, name: str, **kw: Any) -> FitResult:
        tracker = Tracker(name, scope=args.scope, store=False)
        return fit(model, data, seed=seed, device="cpu", tracker=tracker, **kw)

    warm = build_model("cnn", input_shape=full.input_shape, num_classes=10)
    run(warm, full, 99, "warm-up", epochs=2)  # process warm-up, not counted

    rows: list[dict[str, Any]] = []
    for seed in seeds:
        torch.manual_seed(seed)
        scratch_model = build_model("cnn", input_shape=full.input_shape, num_classes=10)
        scratch = run(
            scratch_model, full, seed, "scratch", epochs=MAX_EPOCHS, stop=[TargetAccuracy(TARGET)]
        )

        torch.manual_seed(seed)
        base = build_model("cnn", input_shape=first8.input_shape, num_classes=8)
        pre = run(base, first8, seed, "pretrain 0-7", epochs=MAX_EPOCHS, stop=[Plateau()])
        state = {k: v.clone() for k, v in base.state_dict().items()}

        variants: dict[str, FitResult] = {}
        for variant in ("fine-tune", "frozen-backbone"):
            model = build_model("cnn", input_shape=first8.input_shape, num_classes=8)
            model.load_state_dict(state)
            extend_head(model, first8.class_names, full.class_names)
            if variant == "frozen-backbone":
                freeze(model, "features.*")
            variants[variant] = run(
                model,
                full,
                seed,
                f"transfer {variant}",
                epochs=MAX_EPOCHS,
                lr=LR / 10,
                lr_groups={"head.*": LR},
                stop=[TargetAccuracy(TARGET)],
            )
        row: dict[str, Any] = {
            "seed": seed,
            "energy_source": scratch.energy_source,
            "scratch_epochs": len(scratch.epochs),
            "scratch_energy_j": scratch.total_energy_j,
            "scratch_reached": reached(scratch),
            "pretrain_epochs": len(pre.epochs),
            "pretrain_energy_j": pre.total_energy_j,
            "pretrain_val_accuracy_0_7": pre.final_val_accuracy,
        }
        # For reference: the energy of the epochs up to 90 % (same runs, no extra training).
        row["scratch_epochs_energy_to_90_j"] = scratch.energy_to_accuracy_j(0.90)
        for variant, r in variants.items():
            row[f"{variant}_epochs_energy_to_90_j"] = r.energy_to_accuracy_j(0.90)
            row[f"{variant}_epochs"] = len(r.epochs)
            row[f"{variant}_energy_j"] = r.total_energy_j
            row[f"{variant}_reached"] = reached(r)
            row[f"{variant}_share_of_scratch"] = r.total_energy_j / scratch.total_energy_j
            row[f"{variant}_plus_pretrain_share"] = (
                r.total_energy_j + pre.total_energy_j
            ) / scratch.total_energy_j
        rows.append(row)
        print(
            f"seed {seed}: scratch {row['scratch_epochs']} ep {row['scratch_energy_j']:.2f} J "
            f"(reached {row['scratch_reached']}) | pre-train 0-7 {row['pretrain_epochs']} ep "
            f"{row['pretrain_energy_j']:.2f} J | fine-tune {row['fine-tune_epochs']} ep "
            f"{row['fine-tune_energy_j']:.2f} J = "
            f"{100 * row['fine-tune_share_of_scratch']:.0f} % of scratch "
            f"(reached {row['fine-tune_reached']}) | frozen {row['frozen-backbone_epochs']} ep "
            f"{row['frozen-backbone_energy_j']:.2f} J = "
            f"{100 * row['frozen-backbone_share_of_scratch']:.0f} % "
            f"(reached {row['frozen-backbone_reached']})",
            flush=True,
        )
    summary: dict[str, Any] = {
        "seeds": seeds,
        "threads": args.threads,
        "scope": args.scope,
        "energy_source": rows[0]["energy_source"],
        "goal": "transfer <= 50 % of scratch energy to reach 95 %",
    }
    for variant in ("fine-tune", "frozen-backbone"):
        summary[f"median_{variant}_share_of_scratch"] = statistics.median(
            r[f"{variant}_share_of_scratch"] for r in rows
        )
        summary[f"median_{variant}_plus_pretrain_share"] = statistics.median(
            r[f"{variant}_plus_pretrain_share"] for r in rows
        )
        summary[f"{variant}_always_reached"] = all(r[f"{variant}_reached"] for r in rows)
        to90 = [
            r[f"{variant}_epochs_energy_to_90_j"] / r["scratch_epochs_energy_to_90_j"]
            for r in rows
            if r[f"{variant}_epochs_energy_to_90_j"] and r["scratch_epochs_energy_to_90_j"]
        ]
        summary[f"reference_median_{variant}_share_of_scratch_to_90"] = (
            statistics.median(to90) if to90 else None
        )
    summary["goal_met"] = (
        summary["median_fine-tune_share_of_scratch"] <= 0.5
        and summary["fine-tune_always_reached"]
        and all(r["scratch_reached"] for r in rows)
    )
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
