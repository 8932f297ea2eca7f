"""Layer study on the built-in small CNN: which share of training energy the convolutions take.

Yarally (TU Delft, 2022) found convolutional layers dominate the energy of CNN training.
This runs ``wattwise.studies.study_layers`` on the built-in ``cnn`` (two 3x3 conv blocks,
16 and 32 channels, on scikit-learn's 8x8 digits) and reports:

* the conv share of the *attributed* energy (measured energy per training step, split by
  each module's share of the profiled step time), with the other types beside it;
* the conv share of the time spent inside the model's own layers (leaving out the optimizer,
  the loss and untraced overhead), and the conv share of FLOPs, for comparison.

Measured in process scope with one PyTorch thread, so other processes' load on a shared
machine leaks as little as possible into the figures (see the notes it prints).

Run:  python benchmarks/bench_study_layers.py [--model cnn] [--batch-size 64] [--repeats 5]
      [--window 2] [--profile-steps 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from wattwise.protocol import LeverContext
from wattwise.studies import StudyMethod, study_layers
from wattwise.tracking import Scope
from wattwise.workloads import load_dataset

MODEL_TYPES = ("conv", "linear", "norm", "activation", "pooling", "attention", "other")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window", type=float, default=2.0, help="measured window, s")
    parser.add_argument("--profile-steps", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = load_dataset("digits")
    study = study_layers(
        args.model,
        data=data,
        batch_size=args.batch_size,
        window_s=args.window,
        profile_steps_per_repeat=args.profile_steps,
        method=StudyMethod.of(repeats=args.repeats, warmup_batches=20),
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )
    in_model = [r for r in study.layers if r.type in MODEL_TYPES]
    model_time = sum(r.time_share for r in in_model)
    conv_time = sum(r.time_share for r in in_model if r.type == "conv")
    total_flops = sum(r.flops for r in study.layers)
    conv_flops = sum(r.flops for r in study.layers if r.type == "conv")

    print(f"layer study of {args.model} on digits, batch {args.batch_size}")
    print(f"  machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("  one PyTorch thread, process scope")
    print(
        f"  measured: {study.energy_per_step_j.median * 1e3:.3g} mJ per step "
        f"(IQR {study.energy_per_step_j.iqr * 1e3:.2g} mJ, {study.energy_per_step_j.n} windows "
        f"of {study.steps_per_window} steps), {study.step_s.median * 1e3:.3g} ms per step; "
        f"{study.energy_source}"
    )
    print(f"  profiler overhead: {study.profiler_overhead_frac:+.0%} step time")
    print(f"{'layer':<26}{'type':>11}{'FLOPs':>10}{'time share':>12}{'energy mJ*':>12}")
    for r in study.layers:
        print(
            f"{r.name:<26}{r.type:>11}{r.flops:>10}{r.time_share:>12.1%}"
            f"{r.energy_per_step_j * 1e3:>12.3g}"
        )
    print("  * attributed by time share")
    print("  energy share by type: " + ", ".join(f"{k} {v:.1%}" for k, v in study.by_type.items()))
    print(f"  CONV SHARE OF ENERGY (attributed, whole step): {study.by_type.get('conv', 0):.1%}")
    print(
        f"  conv share of the time inside the model's layers: "
        f"{conv_time / model_time if model_time else 0:.1%}"
    )
    print(f"  conv share of FLOPs: {conv_flops / total_flops if total_flops else 0:.1%}")
    for note in study.notes:
        print(f"  note: {note}")
    if args.json is not None:
        args.json.write_text(json.dumps(study.to_dict(), indent=2))


if __name__ == "__main__":
    main()
