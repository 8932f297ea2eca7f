"""Spiking networks against the ANN of the same shape: operation-count and measured ratios.

Trains the ANN (``mlp:depth=1,width=W``) and the spiking MLP (snntorch ``Leaky``, rate
coding, membrane readout) for each T, repeated, then per T reports the SNN/ANN ratio of
the operation-count energy per inference (estimated, Horowitz ISSCC 2014, 45 nm, SRAM
weight and membrane traffic counted: SNN fp32 against ANN fp32, SNN fp32 against ANN int8,
SNN int8 against ANN int8) and the ratio of the tracker's energy per inference for running
both in PyTorch on this machine, with the accuracy gap. The headline is the smallest T
whose SNN is within 1 pp of the ANN's accuracy, or the most accurate SNN with its gap.
No goal: the ratios are the finding.

Measured in process scope with one PyTorch thread (the machine is shared).

Run:  python benchmarks/bench_snn.py [--dataset digits] [--steps 2,4,8] [--width 128]
      [--family mlp|cnn1d] [--depth 1] [--coding rate|direct] [--epochs 15] [--repeats 3]
      [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from wattwise.protocol import LeverContext
from wattwise.studies import SnnStudy, StudyMethod, study_snn
from wattwise.tracking import Scope
from wattwise.workloads import load_dataset


def _rows(study: SnnStudy) -> list[dict[str, float | int | str]]:
    ann = study.variants[0]
    ann_acc = ann.runs.val_accuracy.median
    ann_j = ann.inference.energy_per_item_j
    rows: list[dict[str, float | int | str]] = []
    for v in study.variants[1:]:
        snn_j = v.inference.energy_per_item_j
        rows.append(
            {
                "steps": v.steps,
                "snn_accuracy": v.runs.val_accuracy.median,
                "ann_accuracy": ann_acc,
                "gap_pp": (v.runs.val_accuracy.median - ann_acc) * 100,
                "input_rate": v.ops.input_rate,
                "op_ratio_fp32": v.op_pj("fp32") / ann.op_pj("fp32"),
                "op_ratio_snn_fp32_vs_ann_int8": v.op_pj("fp32") / ann.op_pj("int8"),
                "op_ratio_int8": v.op_pj("int8") / ann.op_pj("int8"),
                "measured_ratio_median": snn_j.median / ann_j.median,
                "measured_ratio_worst": snn_j.max / ann_j.min,
                "measured_ratio_best": snn_j.min / ann_j.max,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--steps", default="2,4,8")
    parser.add_argument("--family", default="mlp", choices=("mlp", "cnn1d"))
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--coding", default="rate", choices=("rate", "direct"))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    study = study_snn(
        load_dataset(args.dataset),
        steps=[int(t) for t in args.steps.split(",")],
        family=args.family,
        width=args.width,
        depth=args.depth,
        coding=args.coding,
        epochs=args.epochs,
        method=StudyMethod.of(repeats=args.repeats),
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )
    rows = _rows(study)
    source = study.variants[0].inference.total.source
    print(f"snn study on {args.dataset}: {args.family} width {args.width} depth {args.depth}, ")
    print(f"  {args.coding} coding, ", end="")
    print(f"{args.epochs} epochs, ", end="")
    print(f"{args.repeats} repeats, one thread, process scope")
    print(f"  machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"  op-count: {study.op_source}; {study.memory_model}")
    print(f"  measured: tracker energy per inference, {source}")
    print(f"  ANN accuracy {study.variants[0].runs.val_accuracy.median:.3f}")
    head = f"{'T':>3}{'acc':>7}{'gap pp':>8}{'rate':>7}{'op fp32':>9}{'op f32/i8':>10}"
    print(head + f"{'op int8':>9}{'measured':>10}{'best..worst':>16}")
    for r in rows:
        print(
            f"{r['steps']:>3}{r['snn_accuracy']:>7.3f}{r['gap_pp']:>+8.1f}{r['input_rate']:>7.3f}"
            f"{r['op_ratio_fp32']:>9.3f}{r['op_ratio_snn_fp32_vs_ann_int8']:>10.2f}"
            f"{r['op_ratio_int8']:>9.3f}{r['measured_ratio_median']:>10.1f}"
            f"{r['measured_ratio_best']:>8.1f}..{r['measured_ratio_worst']:<6.1f}"
        )
    within = [r for r in rows if float(r["gap_pp"]) >= -1.0]
    pick = within[0] if within else max(rows, key=lambda r: float(r["snn_accuracy"]))
    what = "within 1 pp" if within else f"gap {float(pick['gap_pp']):+.1f} pp (none within 1 pp)"
    print(
        f"  headline (T={pick['steps']}, {what}): op-count SNN/ANN {pick['op_ratio_fp32']:.3f} "
        f"(fp32), {pick['op_ratio_snn_fp32_vs_ann_int8']:.2f} against the int8 ANN; measured "
        f"SNN/ANN {pick['measured_ratio_median']:.1f}x"
    )
    for c in study.crossovers:
        rate = "-" if c.crossover_rate is None else f"{c.crossover_rate:.3f}"
        print(
            f"  crossover T={c.steps} SNN {c.snn_precision} vs {c.against}: rate {rate} "
            f"(counted {c.input_rate:.3f})"
        )
    if args.json is not None:
        out = {"rows": rows, "headline": pick, "study": study.to_dict()}
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
