"""MNIST-1D: the validation accuracy each model family reaches here, for docs/train.md.

Greydanus & Kobak ("Scaling down deep learning with MNIST-1D", ICML 2024) report roughly
logistic regression 32 %, MLP 68 %, CNN 94 %, GRU 91 % on their MNIST-1D. wattwise makes
its own MNIST-1D (``wattwise.workloads._mnist1d``: the paper's recipe, its own templates),
so this measures what the models reach on that: each model trained once with the same
budget as ``wattwise train --dataset mnist1d --model M --epochs N`` would (Adam, lr 1e-3,
batch 64, seed 0, no early stop), one PyTorch thread, process scope.

Run:  python benchmarks/bench_mnist1d_models.py [--epochs 40] [--dataset mnist1d]
      [--models mlp:depth=0,mlp,cnn1d,gru] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from wattwise.protocol import LeverContext
from wattwise.tracking import Scope
from wattwise.train import fit
from wattwise.workloads import build_model, load_dataset

#: The paper's figures (read off its Figure/Table of model families), for the comparison.
PAPER = {"mlp:depth=0": 0.32, "mlp": 0.68, "cnn1d": 0.94, "gru": 0.91}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--models", default="mlp:depth=0,mlp,cnn1d,gru")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = load_dataset(args.dataset)
    context = LeverContext(store=False, scope=Scope.PROCESS)
    print(f"{args.dataset}: {len(data.train)} training, {len(data.val)} validation sequences")
    print(f"  {args.epochs} epochs, Adam lr 1e-3, batch 64, seed 0, one run per model")
    print(f"  machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"{'model':<14}{'params':>8}{'final':>8}{'best':>7}{'at':>5}{'time s':>8}{'paper':>7}")
    rows = []
    for spec in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(spec, input_shape=data.input_shape, num_classes=data.num_classes)
        result = fit(model, data, epochs=args.epochs, seed=0, device="cpu", context=context)
        accs = [e.val_accuracy or 0.0 for e in result.epochs]
        best = max(range(len(accs)), key=accs.__getitem__)
        row = {
            "model": spec,
            "params": sum(p.numel() for p in model.parameters()),
            "final_val_accuracy": accs[-1],
            "best_val_accuracy": accs[best],
            "best_epoch": best + 1,
            "duration_s": result.duration_s,
            "energy_j": result.total_energy_j,
            "energy_source": result.energy_source,
            "paper_accuracy": PAPER.get(spec),
        }
        rows.append(row)
        paper = f"{PAPER[spec]:.2f}" if spec in PAPER else "–"
        print(
            f"{spec:<14}{row['params']:>8,}{accs[-1]:>8.3f}{accs[best]:>7.3f}{best + 1:>5}"
            f"{result.duration_s:>8.1f}{paper:>7}"
        )
    if args.json is not None:
        payload = {"dataset": args.dataset, "epochs": args.epochs, "models": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
