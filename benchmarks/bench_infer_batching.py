"""Batching benchmark: mobilenet_v3_small under a 16 req/s (+-20 %) request queue.

Every policy serves the same arrivals with real inference on the CPU, in one process-scope
run, one window per policy; J/request of the tuned policy (lowest J/request whose p95 meets
the SLO) is compared with batch size 1 measured in the same run. Run twice: with the real
clock (the server sleeps between arrivals; idle power is in every J/request) and the
virtual clock (service times measured, waiting simulated; serving energy only).

PyTorch runs on a fixed number of threads (default 1): on a small shared machine more
threads than free cores make latencies swing by whole factors.

Run:  python benchmarks/bench_infer_batching.py [--requests 160] [--threads 1] [--json F]
Goal (issue 8): tuned J/request <= 0.5 x batch size 1's; report its p95 latency.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from wattwise.infer import RequestStream, measure_batching, parse_policies
from wattwise.tracking import Tracker
from wattwise.workloads import build_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v3_small")
    ap.add_argument("--rate", type=float, default=16.0)
    ap.add_argument("--jitter", type=float, default=0.2)
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--batch-sizes", default="1,4,16,64,greedy")
    ap.add_argument("--max-wait-ms", default="50,250")
    ap.add_argument("--slo-ms", type=float, default=500.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clocks", default="real,virtual")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    waits = [float(w) / 1e3 for w in args.max_wait_ms.split(",")]
    policies = parse_policies(args.batch_sizes, max_wait_s=waits)
    torch.manual_seed(0)
    net = build_model(args.model, input_shape=(3, 224, 224), num_classes=1000)
    out = {}
    for clock in args.clocks.split(","):
        tracker = Tracker(f"bench batching {clock}", scope="process", store=False)
        r = measure_batching(
            net, input_shape=(3, 224, 224), policies=policies,
            stream=RequestStream(args.rate, args.requests, jitter=args.jitter),
            slo_s=args.slo_ms / 1e3,
            clock=clock, model_name=args.model, tracker=tracker,
        )  # fmt: skip
        d = r.to_dict()
        out[clock] = d
        print(
            f"\n== {clock} clock: {args.model}, {args.rate:g} req/s +-{args.jitter:.0%}, "
            f"{args.requests} requests/policy, {args.threads} thread(s), {d['source']}, "
            f"{d['scope']} scope"
        )
        print(
            f"{'policy':>22} {'J/req':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'batch':>6} {'busy':>5} {'W':>6}"
        )
        for p in d["policies"]:
            print(
                f"{p['policy']:>22} {p['energy_per_item_j']:8.4f} {p['p50_ms']:8.1f} "
                f"{p['p95_ms']:8.1f} {p['p99_ms']:8.1f} {p['mean_batch_size']:6.2f} "
                f"{p['busy_share']:5.0%} {p['mean_power_w']:6.2f}"
            )
        best = r.best_policy
        if best is None:
            print(f"tuned: none ({d['best_reason']})")
            continue
        ratio = r.ratio_to_batch1
        print(
            f"tuned: {best.policy}, p95 {best.p95_latency_s * 1e3:.1f} ms "
            f"(SLO {args.slo_ms:g} ms); J/request {best.energy_per_item_j:.4f} vs batch=1 "
            f"{r.policy('batch=1').energy_per_item_j:.4f}: ratio {ratio:.3f} "
            f"-> goal <= 0.5 {'MET' if ratio is not None and ratio <= 0.5 else 'MISSED'}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
