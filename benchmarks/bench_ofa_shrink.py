"""Progressive shrinking benchmark: energy and time of each phase, and what the
sub-networks reach, against the same shapes trained alone (issue 15).

One run of :func:`wattwise.ofa.progressive_shrink` on the default elastic network
(``elastic_network(data.input_shape, data.num_classes)``) prints every phase's energy,
duration and the validation accuracy of the space's largest and smallest sub-networks at
its end; then the largest, a middle (every choice at its middle value) and the smallest
sub-network are validated. With ``--baseline-epochs N`` (> 0) each of those three shapes
is also trained alone from scratch (``ElasticCNN.fresh``, :func:`wattwise.train.fit`, Adam
at the shrink's phase-1 learning rate, N epochs) and its final and best accuracy and energy
printed beside the shrunk one.

Every run is tracked under one :class:`LeverContext` (process scope by default: other
work on a shared machine is not charged). PyTorch runs on one thread.

Run:  python benchmarks/bench_ofa_shrink.py [--dataset mnist1d] [--largest 15]
      [--kernel 3] [--depth 2,4] [--width 3,10] [--subnets 3] [--baseline-epochs 40] [--json F]
Goals it informs (issue 15): each selected sub-network within 1.5 pp of its shape trained
alone; one OFA training <= 0.5x the energy of five separate trainings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from wattwise.ofa import (
    ElasticCNN,
    ElasticSpace,
    ShrinkPlan,
    ShrinkResult,
    SubnetConfig,
    elastic_network,
    progressive_shrink,
)
from wattwise.protocol import LeverContext
from wattwise.train import Batches, evaluate, fit
from wattwise.workloads import DataSplit, load_dataset


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def middle(space: ElasticSpace) -> SubnetConfig:
    """Every choice at its middle value (the lower middle of an even count)."""

    def mid(choices: tuple[Any, ...]) -> Any:
        return choices[(len(choices) - 1) // 2]

    return space.canonical(
        SubnetConfig(
            (mid(space.depth_choices),) * space.stages,
            (mid(space.kernel_choices),) * space.blocks,
            (mid(space.expand_choices),) * space.blocks,
        )
    )


def add_shrink_options(p: argparse.ArgumentParser, *, width: tuple[int, ...]) -> None:
    """The shrink plan's options, its learning rate and batch size (``--width``'s default
    is the caller's); shared with ``bench_ofa.py``."""
    p.add_argument("--largest", type=int, default=15)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--depth", type=_ints, default=(2, 4))
    p.add_argument("--width", type=_ints, default=width)
    p.add_argument("--subnets", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)


def run_shrink(
    args: argparse.Namespace, data: DataSplit, context: LeverContext, seed: int, *, said: str
) -> tuple[ElasticCNN, ShrinkResult]:
    """Progressive shrinking of the default elastic network (built after
    ``torch.manual_seed(seed)``) under the plan of :func:`add_shrink_options`' options; the
    plan is printed after ``said``."""
    torch.manual_seed(seed)
    net = elastic_network(data.input_shape, data.num_classes)
    plan = ShrinkPlan(
        largest_epochs=args.largest,
        kernel_epochs=args.kernel,
        depth_epochs=args.depth,
        width_epochs=args.width,
        subnets_per_step=args.subnets,
    )
    print(f"{said}{plan.to_dict()}", flush=True)
    res = progressive_shrink(
        net, data, plan=plan, context=context, seed=seed, batch_size=args.batch_size, lr=args.lr
    )
    return net, res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist1d")
    add_shrink_options(p, width=(3, 10))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline-epochs", type=int, default=40)
    p.add_argument("--scope", default="process")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ctx = LeverContext.of(
        store=False, scope=args.scope, progress=lambda d, n, what: print(f"  {d}/{n} {what}")
    )
    data = load_dataset(args.dataset)
    net, res = run_shrink(args, data, ctx, args.seed, said="plan: ")
    print("phase     epochs  energy J  time s  largest smallest")
    for ph in res.phases:
        print(
            f"{ph.name:9s} {ph.epochs:6d} {ph.energy_j:9.1f} {ph.duration_s:7.1f} "
            f"{ph.largest_val_accuracy:8.3f} {ph.smallest_val_accuracy:8.3f}"
        )
    print(
        f"total: {res.total_energy_j:.1f} J +- {res.total_uncertainty_j:.1f} J "
        f"({res.energy_source}), {res.duration_s:.1f} s",
        flush=True,
    )
    space = net.space
    val = Batches(
        data.val,
        batch_size=args.batch_size,
        shuffle=False,
        generator=torch.Generator(),
        device=torch.device("cpu"),
        workers=0,
    )
    rows: list[dict[str, Any]] = []
    for label, config in (
        ("largest", space.largest()),
        ("middle", middle(space)),
        ("smallest", space.smallest()),
    ):
        net.set_active(config)
        shrunk = evaluate(net, val)[1]
        row: dict[str, Any] = {
            "subnet": label,
            "key": config.key,
            "params": net.param_count(config),
            "shrunk_val_accuracy": shrunk,
        }
        if args.baseline_epochs > 0:
            torch.manual_seed(args.seed)
            alone = fit(
                net.fresh(config),
                data,
                epochs=args.baseline_epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=args.seed,
                device="cpu",
                context=ctx,
                name=f"ofa-baseline {label}",
            )
            row |= {
                "alone_final_val_accuracy": alone.final_val_accuracy,
                "alone_best_val_accuracy": alone.best_val_accuracy,
                "alone_energy_j": alone.total_energy_j,
                "alone_duration_s": alone.duration_s,
                "alone_energy_source": alone.energy_source,
            }
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json is not None:
        args.json.write_text(json.dumps({"shrink": res.to_dict(), "subnets": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
