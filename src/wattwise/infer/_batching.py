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

Each policy's window follows the protocol's window rule: the stream is served again until
the window has lasted ``min_time_s`` (a virtual-clock stream served in 50 ms is mostly
rounding for a meter that resolves milliseconds), and its figures are summed over serves.

**Net of idle** (``idle_s > 0``): the run also holds two idle windows (the process sleeps,
half of ``idle_s`` before the policies and half after), measured like any other window
under the protocol, in the same scope. Their mean power times each policy window's wall
time is subtracted from its measured energy: what serving added on top of the idle floor.
With either clock this is the same quantity (an idle second adds nothing net), which is
why the virtual clock can stand in for hours of real time in a load sweep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise._records import Scope
from wattwise.infer._queue import (
    BatchPolicy,
    Clock,
    QueueTrace,
    RealClock,
    RequestStream,
    VirtualClock,
    serve_queue,
)
from wattwise.infer._records import BatchingResult, IdlePower, PolicyResult, load_phrase
from wattwise.protocol import (
    LeverContext,
    Measurement,
    Protocol,
    measure_calls,
    schedule,
    tracking,
    warm_up,
)
from wattwise.tracking._tracker import Tracker

__all__ = ["BATCHING_PROTOCOL", "CLOCKS", "measure_batching", "measure_idle", "pick_policy"]

#: Clocks :func:`measure_batching` can run the queue on.
CLOCKS = ("real", "virtual")


def pick_policy(policies: Sequence[PolicyResult], slo_s: float | None) -> tuple[str | None, str]:
    """The tuner: the policy with the lowest J/request whose p95 latency meets the SLO.

    J/request is net of idle where every policy has a net figure, else as measured.

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
    net = all(p.net_energy_j is not None for p in ok)
    best = min(ok, key=lambda p: _tuned_j(p) if net else p.energy_per_item_j)
    slo = "no SLO" if slo_s is None else f"p95 <= {slo_s * 1e3:g} ms"
    what = "net J/request (idle subtracted)" if net else "J/request"
    return best.policy, f"lowest {what} of the {len(ok)} of {len(policies)} policies meeting {slo}"


def _tuned_j(p: PolicyResult) -> float:
    net = p.net_energy_per_item_j
    return net if net is not None else p.energy_per_item_j


def _warm_sizes(policies: Sequence[BatchPolicy]) -> list[int]:
    top = max(p.max_batch_size for p in policies)
    sizes = {1, top, *(p.max_batch_size for p in policies)}
    k = 2
    while k < top:
        sizes.add(k)
        k *= 2
    return sorted(sizes)


#: The default protocol of :func:`measure_batching`: every batch size warmed up twice
#: (the first calls of a shape build kernels), each policy in one window of at least 1 s
#: (the stream served again until then), the idle windows likewise.
BATCHING_PROTOCOL = Protocol(repeats=1, warmup=2, min_time_s=1.0, min_calls=1)

#: How long one idle call sleeps, in s (an idle window is made of such calls).
_IDLE_CALL_S = 0.05


def measure_idle(
    tracker: Tracker, seconds: float, *, window: str = "idle", protocol: Protocol | None = None
) -> Measurement:
    """Idle power of this scope in a running tracker: one window in which the process only
    sleeps, for ``seconds`` (the protocol's window rule, ``min_time_s = seconds``).

    Raises:
        ConfigError: ``seconds`` not > 0.
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"an idle window must last > 0 s, got {seconds}")
    base = protocol or BATCHING_PROTOCOL
    rule = Protocol(repeats=1, warmup=0, min_time_s=seconds, min_calls=1, seed=base.seed)
    return measure_calls(
        partial(time.sleep, min(_IDLE_CALL_S, seconds)),
        tracker=tracker,
        window=window,
        protocol=rule,
    )


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
    idle_s: float = 0.0,
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
            cool-down between them (one repeat), and each window's shortest length (the
            stream is served again until ``min_time_s`` has passed).
        tracker: a tracker to measure with (one window per policy); default: a new one
            from ``context``.
        context: meters, store and scope of a new tracker (None: ``LeverContext()``).
        idle_s: seconds of idle measured in the same run (half before the policies, half
            after) to give every policy its energy net of idle; 0: none.

    Raises:
        ConfigError: bad arguments (clock, rate, counts, idle power, repeats).
    """
    _check(policies, slo_s, clock, idle_power_w, service_s, protocol)
    if not (math.isfinite(idle_s) and idle_s >= 0):
        raise ConfigError(f"the idle measurement must last >= 0 s, got {idle_s}")
    arrivals = stream.arrivals_s()
    dev = torch.device(device)
    run_batch = _batch_runner(model, dev, input_shape, policies, stream.seed)
    for n in _warm_sizes(policies):  # first calls of a shape build kernels: not measured
        warm_up(partial(run_batch, n), protocol)

    by_label = {p.label: p for p in policies}
    served: dict[str, PolicyResult] = {}
    idle: list[Measurement] = []
    with tracking(f"batching {model_name}", context or LeverContext(), tracker) as t:
        if idle_s > 0:
            idle.append(measure_idle(t, idle_s / 2, window="idle before", protocol=protocol))
        for _, label in schedule(list(by_label), protocol):
            clk: Clock = RealClock() if clock == "real" else VirtualClock(service_s)
            served[label] = _serve(
                t, by_label[label], arrivals, clk, run_batch, idle_power_w, slo_s, protocol
            )
        if idle_s > 0:
            idle.append(measure_idle(t, idle_s / 2, window="idle after", protocol=protocol))
        run_id = t.run_id
        scope_used = str(Scope(t.scope).value)
    idle_power = IdlePower.of(idle) if idle else None
    results = [served[label].net_of(idle_power) for label in by_label]
    best, reason = pick_policy(results, slo_s)
    one = next((p for p in results if p.policy == "batch=1"), None)
    jitter = stream.jitter if stream.arrival == "jitter" else 0.0
    load = load_phrase(
        stream.rate_rps, stream.arrival, jitter, None if one is None else one.busy_share
    )
    reason = f"{reason}; tuned for {load}"
    return BatchingResult(
        model=model_name,
        device=str(dev),
        clock=clock,
        arrival=stream.arrival,
        rate_rps=stream.rate_rps,
        jitter=jitter,
        requests=stream.requests,
        seed=stream.seed,
        slo_s=slo_s,
        idle_power_w=idle_power_w,
        measured_idle=idle_power,
        policies=tuple(results),
        best=best,
        best_reason=reason,
        scope=scope_used,
        source=results[0].source,
        run_id=run_id,
        notes=_notes(clock, idle_power_w, scope_used, results, idle_power),
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
    protocol: Protocol,
) -> PolicyResult:
    """Serve the arrivals with one policy inside its own window, as many times as the
    protocol's window rule asks (at least once); figures are summed over the serves."""
    traces: list[QueueTrace] = []

    def serve_once() -> None:
        traces.append(serve_queue(arrivals, policy, clk, run_batch))

    win = measure_calls(
        serve_once,
        tracker=t,
        window=f"policy {policy.label}",
        protocol=protocol,
        items_per_call=len(arrivals),
    )
    idle_j = None
    energy = win.energy_j
    if isinstance(clk, VirtualClock) and idle_power_w is not None:
        idle_j = idle_power_w * sum(tr.idle_s for tr in traces)
        energy += idle_j
    lat = np.concatenate([tr.latencies_s for tr in traces])
    p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
    return PolicyResult(
        policy=policy.label,
        max_batch_size=policy.max_batch_size,
        max_wait_s=policy.max_wait_s if policy.waits else None,
        greedy=policy.greedy,
        requests=len(arrivals) * len(traces),
        batches=sum(len(tr.batches) for tr in traces),
        energy_j=energy,
        uncertainty_j=win.uncertainty_j,
        idle_energy_j=idle_j,
        duration_s=sum(tr.end_s for tr in traces),
        busy_s=sum(tr.busy_s for tr in traces),
        latencies_s=(p50, p95, p99),
        mean_latency_s=float(np.mean(lat)),
        source=win.source,
        meets_slo=None if slo_s is None else p95 <= slo_s,
        serves=len(traces),
        window_s=win.duration_s,
        measured_j=win.energy_j,
    )


def _notes(
    clock: str,
    idle_power_w: float | None,
    scope: str,
    results: Sequence[PolicyResult],
    idle: IdlePower | None,
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
        given = (
            f"plus {idle_power_w:g} W (given, not measured) times the simulated idle time"
            if idle_power_w is not None
            else "idle time is not charged (give an idle power to charge it)"
        )
        notes.append(
            "virtual time: service times measured by running the model, waiting simulated "
            f"as free; J/request is the energy measured while serving, {given}"
        )
    if idle is not None:
        notes.append(
            f"net of idle: {idle.power_w:.3g} W measured idle in this run ({scope} scope, "
            f"{idle.duration_s:.1f} s asleep, before and after the policies) times each "
            "policy window's wall time is subtracted from its measured energy"
        )
    if any(p.serves > 1 for p in results):
        notes.append(
            "short streams were served several times in one window (the protocol's shortest "
            "window); requests, batches and times are summed over the serves"
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
