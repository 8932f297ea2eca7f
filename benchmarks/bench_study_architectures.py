"""Architecture study on digits: the energy/accuracy Pareto front and the headline saving.

del Rey et al. (SEAA 2023) found that the architecture changes training energy by up to
~80 % at almost no accuracy cost. This trains each model with the same budget (fixed
epochs, no early stop) and repeats, then reports per model the median energy and accuracy,
whether it is on the Pareto front, and the headline: the energy the cheapest model within
``--within-pp`` percentage points of the best accuracy saves against the most accurate
model, both measured in this run, with a Mann-Whitney U test on the energies.

Measured in process scope with one PyTorch thread, so other processes' load on a shared
machine leaks as little as possible into the figures (see the notes it prints).

Run:  python benchmarks/bench_study_architectures.py [--models M1,M2,...] [--epochs 10]
      [--repeats 5] [--within-pp 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from wattwise.cli._study import split_models
from wattwise.protocol import LeverContext
from wattwise.studies import StudyMethod, study_architectures
from wattwise.tracking import Scope
from wattwise.workloads import load_dataset

MODELS = "mlp:depth=0,mlp,cnn:depth=1,width=8,cnn,cnn:depth=3,width=32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--within-pp", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = load_dataset("digits")
    study = study_architectures(
        split_models(args.models),
        data,
        epochs=args.epochs,
        within_pp=args.within_pp,
        method=StudyMethod.of(repeats=args.repeats),
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )
    print(f"architecture study on digits: {args.epochs} epochs, {args.repeats} repeats")
    print(f"  machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("  one PyTorch thread, process scope")
    header = f"{'model':<24}{'params':>8}{'FLOPs':>10}{'energy J':>10}{'IQR':>7}"
    print(header + f"{'time s':>8}{'val acc':>9}{'J/pp':>8}{'front':>7}{'vs best':>9}{'p':>8}")
    for m in study.models:
        e = m.runs.energy_j
        vs = m.versus
        print(
            f"{m.model:<24}{m.params:>8}{m.flops:>10}{e.median:>10.3f}{e.iqr:>7.3f}"
            f"{m.runs.duration_s.median:>8.2f}{m.runs.val_accuracy.median:>9.4f}"
            f"{m.energy_per_accuracy_point_j or 0:>8.4f}{'yes' if m.pareto else '':>7}"
            + (
                f"{vs.energy_change_frac:>+9.0%}"
                f"{vs.energy_test.p_value if vs.energy_test.p_value is not None else 0:>8.3f}"
                if vs
                else f"{'(best)':>9}{'':>8}"
            )
        )
    print(f"  energy source: {study.models[0].runs.energy_source}")
    print(f"  Pareto front (cheapest first): {', '.join(study.pareto_front)}")
    print(f"  HEADLINE: {study.saving.describe()}")
    for note in study.notes:
        print(f"  note: {note}")
    if args.json is not None:
        args.json.write_text(json.dumps(study.to_dict(), indent=2))


if __name__ == "__main__":
    main()
