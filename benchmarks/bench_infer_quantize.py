"""Quantization benchmark: int8 against fp32 where matrix work dominates (issue 14).

Each model is trained briefly on its dataset, then fp32 and its int8 variants (torchao
PT2E: dynamic for Linear layers, static with 256 calibration inputs; lowered to oneDNN
x86 int8 kernels) are measured by ``measure_quantization``'s protocol: interleaved rounds
in one process-scope run, on the validation inputs at a fixed batch size, on a fixed
number of threads. Models (``--models``, ``name@dataset`` separated by ``;``):

* ``mlp:depth=3,width=1024@digits``: the wide MLP (3 hidden layers of 1024).
* ``cnn1d@mnist1d``: the MNIST-1D CNN of the model specs (needs the ``mnist1d`` dataset).
* ``transformer@digits``: a ``torch.nn.TransformerEncoder`` (2 layers, d_model 256, 4
  heads, feed-forward 1024) over the 8 rows of a digit as 8 tokens, defined here.
* ``resnet18@digits32``: torchvision's resnet18 (random init, trained here for
  ``--epochs``) on the digits upsampled to 3 x 32 x 32.

Run:  python benchmarks/bench_infer_quantize.py [--models ...] [--batch-size 64]
      [--rounds 5] [--epochs 10] [--threads 1] [--json F]
Goal (issue 14): >= 2x less energy per inference for <= 1 pp accuracy on at least two
models.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from wattwise.infer import QUANTIZE_PROTOCOL, measure_quantization
from wattwise.tracking import Tracker
from wattwise.train import fit, seed_everything
from wattwise.workloads import DataSplit, build_model, load_dataset

DEFAULT_MODELS = "mlp:depth=3,width=1024@digits;cnn1d@mnist1d;transformer@digits;resnet18@digits32"


class TokenEncoder(nn.Module):
    """A small transformer classifier: the rows of an ``H x W`` input as ``H`` tokens."""

    def __init__(self, tokens: int, features: int, num_classes: int, d_model: int = 256):
        super().__init__()
        self.tokens, self.features = tokens, features
        self.embed = nn.Linear(features, d_model)
        self.position = nn.Parameter(torch.zeros(1, tokens, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, 4, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], self.tokens, self.features)) + self.position
        return self.head(self.encoder(h).mean(1))  # type: ignore[no-any-return]


def _tensors(split: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xs = torch.stack([split[i][0] for i in range(len(split))])
    ys = torch.tensor([int(split[i][1]) for i in range(len(split))])
    return xs, ys


def load(dataset: str) -> DataSplit:
    """A bundled dataset, or ``digits32``: the digits upsampled to 3 x 32 x 32."""
    if dataset != "digits32":
        return load_dataset(dataset)
    base = load_dataset("digits")

    def up(split: Any) -> TensorDataset:
        xs, ys = _tensors(split)
        big = nn.functional.interpolate(xs, size=(32, 32), mode="bilinear")
        return TensorDataset(big.repeat(1, 3, 1, 1).contiguous(), ys)

    return DataSplit("digits32", up(base.train), up(base.val), base.class_names, (3, 32, 32))


def make(name: str, data: DataSplit) -> nn.Module:
    if name == "transformer":
        _, h, w = data.input_shape
        return TokenEncoder(h, w, data.num_classes)
    return build_model(name, input_shape=data.input_shape, num_classes=data.num_classes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time-s", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {}
    paying = []
    for entry in args.models.split(";"):
        name, _, dataset = entry.partition("@")
        data = load(dataset or "digits")
        xs, ys = _tensors(data.val)
        cal = torch.stack([data.train[i][0] for i in range(256)])
        seed_everything(0)
        net = make(name, data)
        tracker = Tracker(f"bench quantize {entry}", scope="process", store=False)
        with tracker:
            trained = fit(
                net, data, epochs=args.epochs, tracker=tracker, name="train", device="cpu"
            )
            r = measure_quantization(
                net, val=(xs, ys), calibration=cal, batch_size=args.batch_size,
                protocol=replace(QUANTIZE_PROTOCOL, repeats=args.rounds,
                                 min_time_s=args.min_time_s),
                model_name=name, dataset=data.name, tracker=tracker,
            )  # fmt: skip
        d = r.to_dict()
        out[entry] = d
        print(
            f"\n== {name} on {data.name}: trained {args.epochs} epochs (val acc "
            f"{trained.final_val_accuracy:.4f}); batch {args.batch_size}, {args.rounds} rounds, "
            f"{args.threads} thread(s), {d['source']}, process scope"
        )
        print(
            f"{'variant':>13} {'uJ/inf':>9} {'x less':>7} {'rounds x less (min-max)':>24} "
            f"{'ms/batch':>9} {'KiB':>8} {'acc':>7} {'drop pp':>8}  kernels"
        )
        per_round = {v["variant"]: v["rounds_energy_per_item_j"] for v in d["variants"]}
        for v in d["variants"]:
            ratios = [
                f / q for f, q in zip(per_round["fp32"], per_round[v["variant"]], strict=True)
            ]
            spread = f"{min(ratios):.2f}-{max(ratios):.2f} (med {statistics.median(ratios):.2f})"
            print(
                f"{v['variant']:>13} {v['energy_per_item_j'] * 1e6:9.2f} "
                f"{v['energy_ratio_vs_fp32']:7.2f} {spread:>24} {v['latency_ms']:9.3f} "
                f"{v['size_bytes'] / 1024:8.1f} {v['accuracy']:7.4f} "
                f"{v['accuracy_drop_pp']:8.2f}  {v['kernels']}"
            )
            for note in v["notes"]:
                print(f"{'':>15}note: {note}")
        for k, why in d["skipped"].items():
            print(f"{'':>15}skipped {k}: {why}")
        met = [
            v["variant"]
            for v in d["variants"][1:]
            if v["energy_ratio_vs_fp32"] >= 2.0 and v["accuracy_drop_pp"] <= 1.0
        ]
        if met:
            paying.append(entry)
        print(
            f"goal >= 2x less for <= 1 pp: {'MET by ' + ', '.join(met) if met else 'MISSED'}"
            f"; pick: {d['best']}"
        )
    print(
        f"\ngoal on >= 2 models: {'MET' if len(paying) >= 2 else 'MISSED'} "
        f"({len(paying)} of {len(out)}: {', '.join(paying) or 'none'})"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
