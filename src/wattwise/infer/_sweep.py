"""Batching against load: the same policies under arrival rates from light load to
saturation, one :func:`~wattwise.infer.measure_batching` per rate in one run.

Batching pays only when requests queue: at light load a policy that waits for a batch
serves batches of one and adds latency; once one-at-a-time keeps the server busy, requests
pile up and a batch serves them for less energy each. The sweep shows where that happens,
with every figure net of the idle power measured beside it in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.infer._batching import BATCHING_PROTOCOL, measure_batching
from wattwise.infer._queue import BatchPolicy, RequestStream
from wattwise.infer._sweep_record import BatchingSweep
from wattwise.protocol import LeverContext, Protocol, tracking
from wattwise.tracking._tracker import Tracker

__all__ = ["sweep_batching"]


def sweep_batching(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    policies: Sequence[BatchPolicy],
    rates_rps: Sequence[float],
    stream: Callable[[float], RequestStream],
    slo_s: float | None = None,
    clock: str = "virtual",
    idle_s: float = 2.0,
    device: str | torch.device = "cpu",
    model_name: str = "model",
    protocol: Protocol = BATCHING_PROTOCOL,
    tracker: Tracker | None = None,
    context: LeverContext | None = None,
) -> BatchingSweep:
    """Measure every policy at every rate, lowest rate first, in one tracker run.

    Args:
        model: the model to serve.
        input_shape: shape of one request's input.
        policies: the batching policies to compare at each rate.
        rates_rps: the mean arrival rates, in requests/s.
        stream: the request stream of a rate (requests, arrival process, seed).
        slo_s: p95 latency SLO for the tuner, in s, or None.
        clock: ``real`` or ``virtual`` (the default: waiting is simulated, so a sweep
            from light load takes the serving time, not the arrivals' hours).
        idle_s: idle seconds measured at each rate (half before, half after its policies)
            for the net-of-idle figures; 0: none.
        device: where inference runs.
        model_name: the model's name for the results.
        protocol: as for :func:`measure_batching`.
        tracker: a tracker to measure with; default: a new one from ``context``.
        context: meters, store and scope of a new tracker.

    Raises:
        ConfigError: no rates, or what :func:`measure_batching` refuses.
    """
    if not rates_rps:
        raise ConfigError("no arrival rates to sweep")
    streams = [stream(rate) for rate in sorted(rates_rps)]  # bad rates refused up front
    results = []
    with tracking(f"batching sweep {model_name}", context or LeverContext(), tracker) as t:
        for s in streams:
            with t.window(f"rate {s.rate_rps:g} rps"):
                result = measure_batching(
                    model,
                    input_shape=input_shape,
                    policies=policies,
                    stream=s,
                    slo_s=slo_s,
                    clock=clock,
                    device=device,
                    model_name=model_name,
                    protocol=protocol,
                    tracker=t,
                    idle_s=idle_s,
                )
            results.append(result)
        run_id = t.run_id
    return BatchingSweep(model_name, clock, slo_s, tuple(results), run_id)
