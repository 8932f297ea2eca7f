"""Transfer learning vs training from scratch: energy to the from-scratch run's accuracy.

Per seed (the protocol's seeds), in this process, on a dataset (``digits`` with the small
built-in CNN, or ``mnist1d`` with ``cnn1d``), batch 64, Adam 1e-3:

* scratch: a fresh model trained on classes 0-9 for ``--epochs`` (the baseline); the
  target is its final validation accuracy minus 1 pp;
* pre-training: a fresh model trained on classes 0-7 until the plateau rule stops it
  (the model one already has: reported separately, and added in the "included" share);
* transfer: the 0-7 model's head extended to 0-9 (:func:`extend_head`, new rows neutral),
  fine-tuned on 0-9 with :func:`fine_tune_lr_groups` (backbone at 1e-3, head at 1e-2),
  stopping at the target;
* old recipe (for the before/after): new rows random, backbone at 1e-4, head at 1e-3,
  as the benchmark and the demo did before issue 14.

The goal (issue 14): transfer's energy to the target <= 0.4 x the from-scratch run's
energy, pre-training excluded, median of 3 seeds. The share against the scratch run's own
energy *to the target* (its epochs up to the first that reaches it) is reported too.

Every run is ``fit`` under one :class:`LeverContext` (process scope by default: other
work on a shared machine stays out); the protocol warms the process up once and gives
the seeds. Energy is what the meters here give (each figure's source is printed).

Run:  python benchmarks/bench_train_transfer.py [--dataset digits|mnist1d] [--seeds 3]
      [--epochs 40] [--threads 1] [--scope process] [--json F]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch

from wattwise.protocol import LeverContext, Protocol, warm_up
from wattwise.train import FitResult, Plateau, TargetAccuracy, extend_head, fine_tune_lr_groups, fit
from wattwise.workloads import DataSplit, build_model, load_dataset

LR = 1e-3
GOAL = 0.4
MODELS = {"digits": "cnn", "mnist1d": "cnn1d"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits", choices=sorted(MODELS))
    ap.add_argument("--seeds", type=int, default=3, help="repeats (seeds 0..N-1)")
    ap.add_argument("--epochs", type=int, default=40, help="epochs of the scratch run")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--scope", default="process", help="process (default) or machine")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    protocol = Protocol(repeats=args.seeds, warmup=1, seed=0)
    context = LeverContext.of(store=False, scope=args.scope)
    spec = MODELS[args.dataset]
    full = load_dataset(args.dataset)
    first8 = load_dataset(args.dataset, classes=tuple(range(8)))

    def run(model: torch.nn.Module, data: DataSplit, seed: int, name: str, **kw: Any) -> FitResult:
        return fit(model, data, seed=seed, device="cpu", context=context, name=name, **kw)

    def fresh(data: DataSplit, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return build_model(spec, input_shape=data.input_shape, num_classes=data.num_classes)

    warm_up(lambda: run(fresh(full, 99), full, 99, "warm-up", epochs=2), protocol)

    rows: list[dict[str, Any]] = []
    for repeat in range(1, protocol.repeats + 1):
        seed = protocol.seed_of(repeat)
        scratch = run(fresh(full, seed), full, seed, "scratch", epochs=args.epochs)
        assert scratch.final_val_accuracy is not None
        target = scratch.final_val_accuracy - 0.01
        base = fresh(first8, seed)
        pre = run(base, first8, seed, "pretrain 0-7", epochs=args.epochs, stop=[Plateau()])
        state = {k: v.clone() for k, v in base.state_dict().items()}
        row: dict[str, Any] = {
            "seed": seed,
            "energy_source": scratch.energy_source,
            "scratch_epochs": len(scratch.epochs),
            "scratch_energy_j": scratch.total_energy_j,
            "scratch_final_val_accuracy": scratch.final_val_accuracy,
            "target": target,
            "scratch_energy_to_target_j": scratch.energy_to_accuracy_j(target),
            "pretrain_epochs": len(pre.epochs),
            "pretrain_energy_j": pre.total_energy_j,
            "pretrain_val_accuracy_0_7": pre.final_val_accuracy,
        }
        for variant in ("transfer", "old-recipe"):
            model = fresh(first8, seed)
            model.load_state_dict(state)
            if variant == "transfer":
                extend_head(model, first8.class_names, full.class_names)
                lr, groups = LR, fine_tune_lr_groups(model, LR)
            else:
                extend_head(model, first8.class_names, full.class_names, init="random")
                lr, groups = LR / 10, fine_tune_lr_groups(model, LR / 10)
            r = run(
                model,
                full,
                seed,
                variant,
                epochs=args.epochs,
                lr=lr,
                lr_groups=groups,
                stop=[TargetAccuracy(target)],
            )
            ok = r.final_val_accuracy is not None and r.final_val_accuracy >= target
            row[f"{variant}_epochs"] = len(r.epochs)
            row[f"{variant}_reached"] = ok
            row[f"{variant}_energy_j"] = r.total_energy_j
            row[f"{variant}_first_epoch_accuracy"] = r.epochs[0].val_accuracy
            # Not reaching the target counts as infinite (the goal is energy *to* it).
            to_target = r.total_energy_j if ok else float("inf")
            row[f"{variant}_share"] = to_target / scratch.total_energy_j
            row[f"{variant}_plus_pretrain_share"] = (
                to_target + pre.total_energy_j
            ) / scratch.total_energy_j
            s_to = row["scratch_energy_to_target_j"]
            row[f"{variant}_share_of_scratch_to_target"] = to_target / s_to if s_to else None
        rows.append(row)
        print(
            f"seed {seed}: scratch {row['scratch_epochs']} ep {row['scratch_energy_j']:.2f} J "
            f"final {row['scratch_final_val_accuracy']:.4f} (target {target:.4f}, reached "
            f"after {row['scratch_energy_to_target_j'] or 0:.2f} J) | pre-train 0-7 "
            f"{row['pretrain_epochs']} ep {row['pretrain_energy_j']:.2f} J | transfer "
            f"{row['transfer_epochs']} ep {row['transfer_energy_j']:.2f} J = "
            f"{row['transfer_share']:.2f} x scratch (reached {row['transfer_reached']}) | "
            f"old recipe {row['old-recipe_epochs']} ep = {row['old-recipe_share']:.2f} x "
            f"(reached {row['old-recipe_reached']})",
            flush=True,
        )
    summary: dict[str, Any] = {
        "dataset": args.dataset,
        "model": spec,
        "seeds": [r["seed"] for r in rows],
        "scratch_epochs": args.epochs,
        "threads": args.threads,
        "scope": args.scope,
        "energy_source": rows[0]["energy_source"],
        "goal": f"transfer energy to target <= {GOAL} x scratch energy (pre-training excluded)",
    }
    for variant in ("transfer", "old-recipe"):
        for key in ("share", "plus_pretrain_share", "share_of_scratch_to_target"):
            values = [r[f"{variant}_{key}"] for r in rows if r[f"{variant}_{key}"] is not None]
            summary[f"median_{variant}_{key}"] = statistics.median(values) if values else None
            summary[f"worst_{variant}_{key}"] = max(values) if values else None
        summary[f"{variant}_reached"] = sum(r[f"{variant}_reached"] for r in rows)
    summary["goal_met"] = summary["median_transfer_share"] <= GOAL
    print(json.dumps(finite(summary), indent=2))
    if args.json:
        out = {"runs": [finite(r) for r in rows], "summary": finite(summary)}
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def finite(d: dict[str, Any]) -> dict[str, Any]:
    """For JSON: a share that is infinite (the target never reached) as null."""
    return {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in d.items()}


if __name__ == "__main__":
    main()
