"""Inference energy per request under a simulated request queue, and the batching tuner.

Every policy serves the *same* arrivals (a :class:`~wattwise.infer.RequestStream`) with
real inference, each inside its own tracker window, one after the other in one run. Two
clocks:

* ``real``: wall-clock time. Requests arrive on schedule, the server sleeps while it
  waits, and the window's energy covers the whole run: idle power is paid for every second
  the run lasts, as on a real server. This is what a dedicated server pays per request.
* ``virtual``: simulated time. Service times are measured (real inference), waiting is
  free and instant; the window then holds only the energy spent serving. An idle power
  given by the user (``idle_power_w``) is added for the simulated idle time, and reported
  apart as not measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._records import Provenance, Scope
from wattwise.infer._queue import (
    BatchPolicy,
    Clock,
    RealClock,
    RequestStream,
    VirtualClock,
    serve_queue,
)
from wattwise.infer._records import BatchingResult, PolicyResult
from wattwise.protocol import LeverContext, Protocol, schedule, tracking, warm_up
from wattwise.tracking._tracker import Tracker

__all__ = ["BATCHING_PROTOCOL", "CLOCKS", "measure_batching", "pick_policy"]

#: Clocks :func:`measure_batching` can run the queue on.
CLOCKS = ("real", "virtual")


def pick_policy(policies: Sequence[PolicyResult], slo_s: float | None) -> tuple[str | None, str]:
    """The tuner: the policy with the lowest J/request whose p95 latency meets the SLO.

    Args:
        policies: measured policies.
        slo_s: p95 latency SLO in s, or None (any latency).

    Returns:
        ``(label or None, reason)``.
    """
    if not policies:
        return None, "no policy was measured"
    ok = [p for p in policies if slo_s is None or p.p95_latency_s <= slo_s]
    if not ok:
        fastest = min(policies, key=lambda p: p.p95_latency_s)
        return None, (
            f"no policy met the p95 SLO of {slo_s * 1e3:g} ms "  # type: ignore[operator]
            f"(lowest p95: {fastest.policy}, {fastest.p95_latency_s * 1e3:.1f} ms)"
        )
    best = min(ok, key=lambda p: p.energy_per_item_j)
    slo = "no SLO" if slo_s is None else f"p95 <= {slo_s * 1e3:g} ms"
    return best.policy, (
        f"lowest J/request of the {len(ok)} of {len(policies)} policies meeting {slo}"
    )


def _warm_sizes(policies: Sequence[BatchPolicy]) -> list[int]:
    top = max(p.max_batch_size for p in policies)
    sizes = {1, top, *(p.max_batch_size for p in policies)}
    k = 2
    while k < top:
        sizes.add(k)
        k *= 2
    return sorted(sizes)


#: The default protocol of :func:`measure_batching`: every batch size warmed up twice
#: (the first calls of a shape build kernels), each policy served once.
BATCHING_PROTOCOL = Protocol(repeats=1, warmup=2)


def measure_batching(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    policies: Sequence[BatchPolicy],
    stream: RequestStream,
    slo_s: float | None = None,
    clock: str = "real",
    idle_power_w: float | None = None,
    service_s: Callable[[int], float] | None = None,
    device: str | torch.device = "cpu",
    model_name: str = "model",
    protocol: Protocol = BATCHING_PROTOCOL,
    tracker: Tracker | None = None,
    context: LeverContext | None = None,
) -> BatchingResult:
    """Serve the same simulated request stream with every policy and measure each.

    Args:
        model: the model to serve (put in eval mode here, gradients off).
        input_shape: shape of one request's input, e.g. ``(3, 224, 224)``.
        policies: the batching policies to compare.
        stream: the requests each policy serves (rate, count, ``jitter`` gaps
            ``1/rate * U(1 - jitter, 1 + jitter)`` or ``poisson``); its seed also seeds
            the random inputs.
        slo_s: p95 latency SLO for the tuner, in s, or None.
        clock: ``real`` or ``virtual`` (see the module docstring).
        idle_power_w: with the virtual clock, an idle power to charge for simulated idle
            time, in W (not measured: reported as ``idle_energy_j``).
        service_s: with the virtual clock, service time of a batch of n requests in s,
            instead of the measured one (tests).
        device: where inference runs.
        model_name: the model's name for the result.
        protocol: warm-up calls per batch size, the order of the policies and the
            cool-down between them (one repeat: each policy serves the stream once).
        tracker: a tracker to measure with (one window per policy); default: a new one
            from ``context``.
        context: meters, store and scope of a new tracker (None: ``LeverContext()``).

    Raises:
        ConfigError: bad arguments (clock, rate, counts, idle power, repeats).
    """
    _check(policies, slo_s, clock, idle_power_w, service_s, protocol)
    arrivals = stream.arrivals_s()
    dev = torch.device(device)
    run_batch = _batch_runner(model, dev, input_shape, policies, stream.seed)
    for n in _warm_sizes(policies):  # first calls of a shape build kernels: not measured
        warm_up(partial(run_batch, n), protocol)

    by_label = {p.label: p for p in policies}
    served: dict[str, PolicyResult] = {}
    with tracking(f"batching {model_name}", context or LeverContext(), tracker) as t:
        for _, label in schedule(list(by_label), protocol):
            clk: Clock = RealClock() if clock == "real" else VirtualClock(service_s)
            served[label] = _serve(
                t, by_label[label], arrivals, clk, run_batch, idle_power_w, slo_s
            )
        run_id = t.run_id
        scope_used = str(Scope(t.scope).value)
    results = [served[label] for label in by_label]
    best, reason = pick_policy(results, slo_s)
    return BatchingResult(
        model=model_name,
        device=str(dev),
        clock=clock,
        arrival=stream.arrival,
        rate_rps=stream.rate_rps,
        jitter=stream.jitter if stream.arrival == "jitter" else 0.0,
        requests=stream.requests,
        seed=stream.seed,
        slo_s=slo_s,
        idle_power_w=idle_power_w,
        policies=tuple(results),
        best=best,
        best_reason=reason,
        scope=scope_used,
        source=results[0].source,
        run_id=run_id,
        notes=_notes(clock, idle_power_w, scope_used, results),
    )


def _check(
    policies: Sequence[BatchPolicy],
    slo_s: float | None,
    clock: str,
    idle_power_w: float | None,
    service_s: Callable[[int], float] | None,
    protocol: Protocol,
) -> None:
    """Refuse bad settings before anything is served."""
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r} (known: {', '.join(CLOCKS)})")
    if not policies:
        raise ConfigError("no batching policy to measure")
    if idle_power_w is not None and (clock != "virtual" or idle_power_w < 0):
        raise ConfigError("an idle power (>= 0 W) applies to the virtual clock only")
    if service_s is not None and clock != "virtual":
        raise ConfigError("a service-time function applies to the virtual clock only")
    if slo_s is not None and not slo_s > 0:
        raise ConfigError(f"the latency SLO must be > 0, got {slo_s}")
    if protocol.repeats != 1:
        raise ConfigError(
            f"batching serves the request stream once per policy: repeats must be 1, "
            f"got {protocol.repeats} (repeat the measurement in separate runs)"
        )


def _batch_runner(
    model: nn.Module,
    dev: torch.device,
    input_shape: tuple[int, ...],
    policies: Sequence[BatchPolicy],
    seed: int,
) -> Callable[[int], None]:
    """Runs one batch of n requests: a slice of a seeded random pool, synchronised."""
    model = model.to(dev).eval()
    top = max(p.max_batch_size for p in policies)
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(top, *input_shape, generator=gen).to(dev)
    sync = dev.type == "cuda"

    def run_batch(n: int) -> None:
        with torch.inference_mode():
            model(pool[:n])
        if sync:
            torch.cuda.synchronize(dev)

    return run_batch


def _serve(
    t: Tracker,
    policy: BatchPolicy,
    arrivals: Sequence[float],
    clk: Clock,
    run_batch: Callable[[int], None],
    idle_power_w: float | None,
    slo_s: float | None,
) -> PolicyResult:
    """Serve the arrivals with one policy inside its own window."""
    with t.window(f"policy {policy.label}") as w:
        trace = serve_queue(arrivals, policy, clk, run_batch)
    win = w.result
    assert win is not None
    idle_j = None
    energy = win.energy_j
    if isinstance(clk, VirtualClock) and idle_power_w is not None:
        idle_j = idle_power_w * trace.idle_s
        energy += idle_j
    lat = trace.latencies_s
    p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
    return PolicyResult(
        policy=policy.label,
        max_batch_size=policy.max_batch_size,
        max_wait_s=policy.max_wait_s if policy.waits else None,
        greedy=policy.greedy,
        requests=len(arrivals),
        batches=len(trace.batches),
        energy_j=energy,
        uncertainty_j=win.uncertainty_j,
        idle_energy_j=idle_j,
        duration_s=trace.end_s,
        busy_s=trace.busy_s,
        latencies_s=(p50, p95, p99),
        mean_latency_s=float(np.mean(lat)),
        source=str(Provenance.from_components(win.components)),
        meets_slo=None if slo_s is None else p95 <= slo_s,
    )


def _notes(
    clock: str, idle_power_w: float | None, scope: str, results: Sequence[PolicyResult]
) -> tuple[str, ...]:
    notes = [
        "requests are random tensors of the model's input shape; a batch is a slice of a "
        "pre-made pool: no decoding, preprocessing or network time is in the latencies",
        "latency = queueing + service, from arrival to the end of the request's batch",
    ]
    if clock == "real":
        notes.append(
            "real time: the server sleeps between arrivals and each policy's window covers "
            f"its whole run, so idle power is in every J/request ({scope} scope)"
        )
    else:
        idle = (
            f"plus {idle_power_w:g} W (given, not measured) times the simulated idle time"
            if idle_power_w is not None
            else "idle time is not charged (give an idle power to charge it)"
        )
        notes.append(
            "virtual time: service times measured by running the model, waiting simulated "
            f"as free; J/request is the energy measured while serving, {idle}"
        )
    overloaded = [p.policy for p in results if p.batches and p.busy_s > 0.95 * p.duration_s > 0]
    if overloaded:
        notes.append(
            "server saturated (busy > 95 % of the run) under: "
            + ", ".join(overloaded)
            + "; the queue grew and latencies reflect the backlog"
        )
    if any(not math.isfinite(p.energy_per_item_j) for p in results):
        notes.append("some policies have no finite energy figure")
    return tuple(notes)
