"""Batching benchmark: energy per request net of idle against the arrival rate, for every
policy, from light load to saturation, on two models (issue 14 item 6).

For each model and seed, one process-scope run sweeps the arrival rates
(:func:`wattwise.infer.sweep_batching`): at every rate every policy serves the same
arrivals with real inference on the CPU, each in its own protocol window (at least 1 s: a
short stream is served again), and two idle windows (the process asleep, 1 s before and
1 s after the policies) give the idle power subtracted from every window: net J/request.
The tuner picks the lowest net J/request whose p95 latency meets the SLO, and the ratio
to batch=1's net J/request at the same rate is the figure.

Clocks: the sweep runs on the **virtual clock** (service times measured by running the
model, waiting simulated), so light load costs the serving time, not hours of arrivals;
net of idle the two clocks measure the same thing (an idle second adds nothing net).
``--real-check`` also serves one rate per model on the **real clock** (the server sleeps
between arrivals) and prints its net ratio beside the virtual one.

Seeds (arrivals and inputs) are interleaved: seed 1 of every model, then seed 2...
PyTorch runs on one thread: on a small shared machine more threads than free cores make
latencies swing by whole factors.

Run:  python benchmarks/bench_infer_batching.py [--seeds 3] [--requests 160]
      [--models mobilenet_v3_small,cnn] [--real-check] [--json F]
Goal (issue 14): where batch=1 keeps the server >= 50 % busy, the tuned policy uses
<= 0.5x batch=1's net J/request, within the SLO (median and worst case over seeds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wattwise.infer import (
    BatchingSweep,
    RequestStream,
    measure_batching,
    parse_policies,
    sweep_batching,
)
from wattwise.protocol import LeverContext
from wattwise.tracking import Scope
from wattwise.workloads import build_model


@dataclass(frozen=True)
class Case:
    """One model's sweep: its input, policies, SLO and rates (light load to saturation)."""

    model: str
    input_shape: tuple[int, ...]
    classes: int
    batch_sizes: str
    waits_ms: tuple[float, ...]
    greedy_max: int
    slo_ms: float
    rates: tuple[float, ...]
    real_rate: float


CASES = {
    # about 11-20 ms per image at batch 1 on one thread of this CPU: saturates near 50-90/s
    "mobilenet_v3_small": Case(
        "mobilenet_v3_small", (3, 224, 224), 1000, "1,4,8,16,greedy", (25.0, 100.0), 16,
        500.0, (2.0, 8.0, 16.0, 32.0, 48.0, 64.0, 96.0), 32.0,
    ),
    # the digits CNN: about 0.2-0.3 ms per request at batch 1, overhead-bound
    "cnn": Case(
        "cnn", (1, 8, 8), 10, "1,4,16,64,greedy", (2.0, 10.0), 64,
        20.0, (100.0, 300.0, 1000.0, 2000.0, 3000.0, 5000.0), 2000.0,
    ),
}  # fmt: skip


def _sweep(case: Case, seed: int, requests: int, idle_s: float) -> BatchingSweep:
    torch.manual_seed(0)
    net = build_model(case.model, input_shape=case.input_shape, num_classes=case.classes)
    policies = parse_policies(
        case.batch_sizes, max_wait_s=[w / 1e3 for w in case.waits_ms], greedy_max=case.greedy_max
    )
    return sweep_batching(
        net,
        input_shape=case.input_shape,
        policies=policies,
        rates_rps=case.rates,
        stream=lambda rate: RequestStream(rate, requests, jitter=0.2, seed=seed),
        slo_s=case.slo_ms / 1e3,
        clock="virtual",
        idle_s=idle_s,
        model_name=case.model,
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )


def _real(case: Case, seed: int, requests: int, idle_s: float) -> dict[str, Any]:
    torch.manual_seed(0)
    net = build_model(case.model, input_shape=case.input_shape, num_classes=case.classes)
    policies = parse_policies(
        case.batch_sizes, max_wait_s=[w / 1e3 for w in case.waits_ms], greedy_max=case.greedy_max
    )
    r = measure_batching(
        net,
        input_shape=case.input_shape,
        policies=policies,
        stream=RequestStream(case.real_rate, requests, jitter=0.2, seed=seed),
        slo_s=case.slo_ms / 1e3,
        clock="real",
        idle_s=idle_s,
        model_name=case.model,
        context=LeverContext(store=False, scope=Scope.PROCESS),
    )
    return r.to_dict()


def _spread(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.3f} (worst {max(values):.3f})"


def _report(case: Case, sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rate over seeds: batch=1's busy share, the picks, the net ratio median/worst."""
    print(
        f"\n== {case.model} {'x'.join(map(str, case.input_shape))}, SLO p95 <= "
        f"{case.slo_ms:g} ms, {len(sweeps)} seed(s), virtual clock, "
        f"{sweeps[0]['results'][0]['source']}, process scope"
    )
    print(
        f"{'rate/s':>7} {'busy@1':>7} {'J/req@1':>9} {'p95@1 ms':>9} {'tuned (by seed)':>40} "
        f"{'net ratio median (worst)':>25} {'tuned p95 ms':>13} {'goal':>6}"
    )
    rows = []
    for i, rate in enumerate(case.rates):
        per_seed = [s["rows"][i] for s in sweeps]
        busy = [r["batch1_busy_share"] for r in per_seed]
        ratios = [
            r["net_ratio_to_batch1"] for r in per_seed if r["net_ratio_to_batch1"] is not None
        ]
        p95 = [r["best_p95_ms"] for r in per_seed if r["best_p95_ms"] is not None]
        one_j = [r["batch1_net_energy_per_item_j"] for r in per_seed]
        one_p95 = [r["batch1_p95_ms"] for r in per_seed]
        applies = statistics.median(busy) >= 0.5
        met = applies and len(ratios) == len(per_seed) and max(ratios) <= 0.5
        goal = ("MET" if met else "MISSED") if applies else "n/a"
        picks = ", ".join(str(r["best"]) for r in per_seed)
        print(
            f"{rate:7g} {statistics.median(busy):7.0%} {statistics.median(one_j):9.2e} "
            f"{statistics.median(one_p95):9.1f} {picks:>40} {_spread(ratios):>25} "
            f"{(f'{statistics.median(p95):.1f} ({max(p95):.1f})' if p95 else '–'):>13} "
            f"{goal:>6}"
        )
        rows.append(
            {
                "rate_rps": rate,
                "batch1_busy_share_median": statistics.median(busy),
                "batch1_net_j_per_request_median": statistics.median(one_j),
                "picks": [r["best"] for r in per_seed],
                "net_ratio_median": statistics.median(ratios) if ratios else None,
                "net_ratio_worst": max(ratios) if ratios else None,
                "tuned_p95_ms_median": statistics.median(p95) if p95 else None,
                "tuned_p95_ms_worst": max(p95) if p95 else None,
                "goal": goal,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet_v3_small,cnn")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--idle-s", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--real-check", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [CASES[m.strip()] for m in args.models.split(",") if m.strip()]
    sweeps: dict[str, list[dict[str, Any]]] = {c.model: [] for c in cases}
    for seed in range(args.seeds):  # interleaved: every model's seed 1, then seed 2...
        for case in cases:
            s = _sweep(case, seed, args.requests, args.idle_s)
            sweeps[case.model].append(s.to_dict())
            print(f"  seed {seed} {case.model}: done", file=sys.stderr, flush=True)
    out: dict[str, Any] = {"command": " ".join(sys.argv), "threads": args.threads}
    for case in cases:
        out[case.model] = {"rows": _report(case, sweeps[case.model]), "sweeps": sweeps[case.model]}
    if args.real_check:
        print("\n== real-clock check (seed 0): net ratio, real against virtual at the same rate")
        for case in cases:
            d = _real(case, 0, args.requests, args.idle_s)
            virtual = sweeps[case.model][0]["rows"][case.rates.index(case.real_rate)]
            print(
                f"{case.model} at {case.real_rate:g}/s: real {d['best']}, net ratio "
                f"{d['net_ratio_to_batch1']}; virtual {virtual['best']}, net ratio "
                f"{virtual['net_ratio_to_batch1']}; {d['tuned_for']['text']}"
            )
            out[case.model]["real_check"] = d
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
