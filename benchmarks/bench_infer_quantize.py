"""Quantization benchmark: the built-in digits MLP and CNN, fp32 against int8.

Each model is trained on the bundled digits (10 epochs), then fp32 and its int8 variants
(torchao PT2E: dynamic for Linear layers, static with 256 calibration images; lowered to
oneDNN x86 int8 kernels) are measured interleaved over rounds in one process-scope run,
on the validation images at a fixed batch size, on a fixed number of threads.

Run:  python benchmarks/bench_infer_quantize.py [--batch-size 64] [--rounds 5] [--json F]
Goal (issue 8): >= 1.5x less energy per inference for <= 1 pp accuracy lost.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from wattwise.infer import QUANTIZE_PROTOCOL, measure_quantization
from wattwise.tracking import Tracker
from wattwise.train import fit, seed_everything
from wattwise.workloads import build_model, load_dataset


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time-s", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    xs = torch.stack([data.val[i][0] for i in range(len(data.val))])  # type: ignore[arg-type]
    ys = torch.tensor([int(data.val[i][1]) for i in range(len(data.val))])  # type: ignore[arg-type]
    cal = torch.stack([data.train[i][0] for i in range(256)])
    out = {}
    for spec in args.models.split(","):
        seed_everything(0)
        net = build_model(spec, input_shape=data.input_shape, num_classes=data.num_classes)
        tracker = Tracker(f"bench quantize {spec}", scope="process", store=False)
        with tracker:
            fit(net, data, epochs=args.epochs, tracker=tracker, name="train")
            r = measure_quantization(
                net, val=(xs, ys), calibration=cal, batch_size=args.batch_size,
                protocol=replace(QUANTIZE_PROTOCOL, repeats=args.rounds,
                                 min_time_s=args.min_time_s),
                model_name=spec, dataset="digits", tracker=tracker,
            )  # fmt: skip
        d = r.to_dict()
        out[spec] = d
        print(
            f"\n== {spec} on digits: batch {args.batch_size}, {args.rounds} rounds, "
            f"{args.threads} thread(s), {d['source']}, process scope"
        )
        print(
            f"{'variant':>13} {'uJ/inf':>8} {'x less':>7} {'ms/batch':>9} {'KiB':>7} "
            f"{'acc':>7} {'drop pp':>8}  kernels"
        )
        for v in d["variants"]:
            print(
                f"{v['variant']:>13} {v['energy_per_item_j'] * 1e6:8.3f} "
                f"{v['energy_ratio_vs_fp32']:7.2f} {v['latency_ms']:9.3f} "
                f"{v['size_bytes'] / 1024:7.1f} {v['accuracy']:7.4f} "
                f"{v['accuracy_drop_pp']:8.2f}  {v['kernels']}"
            )
        met = [
            v["variant"]
            for v in d["variants"][1:]
            if v["energy_ratio_vs_fp32"] >= 1.5 and v["accuracy_drop_pp"] <= 1.0
        ]
        print(
            f"goal >= 1.5x less for <= 1 pp: {'MET by ' + ', '.join(met) if met else 'MISSED'}"
            f"; pick: {d['best']}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
