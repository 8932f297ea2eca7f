"""Frozen records of inference measurements. Units are in the field names (J, W, s, B).

``to_dict`` gives the JSON shape of each command's ``--json`` output and of the results a
study stores; JSON uses milliseconds for latencies (``p95_ms``), as the issue asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wattwise.protocol import Measurement

__all__ = [
    "BatchingResult",
    "PolicyResult",
    "QuantVariant",
    "QuantizationResult",
    "ZooEntry",
    "ZooResult",
]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


@dataclass(frozen=True)
class PolicyResult:
    """One batching policy served under the request queue.

    Attributes:
        policy: its label (``batch=16 wait=100ms``, ``greedy<=64``).
        max_batch_size: the largest batch it may serve.
        max_wait_s: longest a request waits for its batch to fill, in s, or None.
        greedy: serves whatever waits without waiting.
        requests: requests served.
        batches: batches served.
        energy_j: energy counted while the policy ran (see ``idle_energy_j``), in J.
        uncertainty_j: one-sigma uncertainty of ``energy_j``, in J.
        idle_energy_j: with the virtual clock, the part of ``energy_j`` that is the given
            idle power times the simulated idle time (not measured), in J; else None.
        duration_s: from the first arrival's clock zero to the last completion, in s
            (simulated seconds with the virtual clock).
        busy_s: time spent serving batches, in s.
        latencies_s: p50, p95 and p99 latency (queueing + service), in s.
        mean_latency_s: mean latency, in s.
        source: where the energy comes from.
        meets_slo: whether p95 latency is within the SLO, or None without an SLO.
    """

    policy: str
    max_batch_size: int
    max_wait_s: float | None
    greedy: bool
    requests: int
    batches: int
    energy_j: float
    uncertainty_j: float
    idle_energy_j: float | None
    duration_s: float
    busy_s: float
    latencies_s: tuple[float, float, float]
    mean_latency_s: float
    source: str
    meets_slo: bool | None = None

    @property
    def j_per_request(self) -> float:
        """Energy per request, in J."""
        return self.energy_j / self.requests

    @property
    def p95_latency_s(self) -> float:
        """95th percentile latency, in s."""
        return self.latencies_s[1]

    @property
    def throughput_rps(self) -> float:
        """Requests served per second of the run, in 1/s."""
        return self.requests / self.duration_s if self.duration_s > 0 else float("inf")

    @property
    def mean_power_w(self) -> float:
        """Mean power over the run, in W."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def mean_batch_size(self) -> float:
        """Mean requests per batch."""
        return self.requests / self.batches

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (latencies in ms)."""
        p50, p95, p99 = self.latencies_s
        return {
            "policy": self.policy,
            "batch_size": self.max_batch_size,
            "max_wait_ms": _ms(self.max_wait_s),
            "greedy": self.greedy,
            "requests": self.requests,
            "batches": self.batches,
            "mean_batch_size": self.mean_batch_size,
            "j_per_request": self.j_per_request,
            "energy_j": self.energy_j,
            "uncertainty_j": self.uncertainty_j,
            "idle_energy_j": self.idle_energy_j,
            "duration_s": self.duration_s,
            "busy_s": self.busy_s,
            "busy_share": self.busy_s / self.duration_s if self.duration_s > 0 else 0.0,
            "throughput": self.throughput_rps,
            "p50_ms": p50 * 1e3,
            "p95_ms": p95 * 1e3,
            "p99_ms": p99 * 1e3,
            "mean_latency_ms": self.mean_latency_s * 1e3,
            "mean_power_w": self.mean_power_w,
            "source": self.source,
            "meets_slo": self.meets_slo,
        }


@dataclass(frozen=True)
class BatchingResult:
    """Every policy served under the same arrivals, and the tuner's pick.

    Attributes:
        model: the model spec.
        device: where inference ran.
        clock: ``real`` (wall-clock, the server idles between arrivals) or ``virtual``
            (simulated time with measured service times).
        arrival: ``jitter`` or ``poisson``.
        rate_rps: mean arrival rate, in requests/s.
        jitter: relative jitter of the gaps (``jitter`` arrivals).
        requests: requests per policy.
        seed: seed of the arrivals.
        slo_s: the p95 latency SLO, in s, or None.
        idle_power_w: the idle power added for simulated idle time (virtual clock), in W.
        policies: one result per policy, in the order run.
        best: label of the policy with the lowest J/request meeting the SLO, or None.
        best_reason: why it was chosen, or why none was.
        scope: ``machine`` or ``process``.
        source: where the energy comes from.
        run_id: the tracker run holding one window per policy.
        notes: what the figures include and exclude.
    """

    model: str
    device: str
    clock: str
    arrival: str
    rate_rps: float
    jitter: float
    requests: int
    seed: int
    slo_s: float | None
    idle_power_w: float | None
    policies: tuple[PolicyResult, ...]
    best: str | None
    best_reason: str
    scope: str
    source: str
    run_id: str
    notes: tuple[str, ...] = ()

    def policy(self, label: str) -> PolicyResult:
        """The result of the policy with this label.

        Raises:
            KeyError: no such policy.
        """
        for p in self.policies:
            if p.policy == label:
                return p
        raise KeyError(label)

    @property
    def best_policy(self) -> PolicyResult | None:
        """The tuner's pick, or None."""
        return self.policy(self.best) if self.best is not None else None

    @property
    def ratio_to_batch1(self) -> float | None:
        """J/request of the pick over that of ``batch=1`` in the same run, or None."""
        best = self.best_policy
        one = next((p for p in self.policies if p.policy == "batch=1"), None)
        if best is None or one is None or one.j_per_request <= 0:
            return None
        return best.j_per_request / one.j_per_request

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the ``--json`` output and the stored study results."""
        return {
            "model": self.model,
            "device": self.device,
            "clock": self.clock,
            "arrival": self.arrival,
            "rate_rps": self.rate_rps,
            "jitter": self.jitter,
            "requests": self.requests,
            "seed": self.seed,
            "slo_ms": _ms(self.slo_s),
            "idle_power_w": self.idle_power_w,
            "scope": self.scope,
            "source": self.source,
            "policies": [p.to_dict() for p in self.policies],
            "best": self.best,
            "best_reason": self.best_reason,
            "ratio_to_batch1": self.ratio_to_batch1,
            "run_id": self.run_id,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class QuantVariant:
    """One precision variant of a model, measured on the same inputs as the others.

    Attributes:
        variant: ``fp32``, ``int8-dynamic`` or ``int8-static``.
        method: how it was made (``torchao pt2e, X86InductorQuantizer, static, 256
            calibration images``).
        kernels: what runs it: ``fp32 eager``, ``x86 oneDNN int8 (lowered)``, or
            ``reference`` (quantize/dequantize around fp32 kernels: int8's accuracy but
            not int8's speed or energy).
        measurement: the energy window(s), summed.
        size_bytes: bytes of the tensors the variant computes with (weights, biases,
            scales), in B.
        accuracy: share of the validation set classified right (0..1).
        notes: what was left in fp32 and why, fallbacks taken.
    """

    variant: str
    method: str
    kernels: str
    measurement: Measurement
    size_bytes: int
    accuracy: float
    notes: tuple[str, ...] = ()

    @property
    def j_per_inference(self) -> float:
        """Energy per input, in J."""
        return self.measurement.energy_per_item_j

    @property
    def latency_s(self) -> float:
        """Wall time of one batch, in s."""
        return self.measurement.s_per_call

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (latency in ms)."""
        m = self.measurement
        return {
            "variant": self.variant,
            "method": self.method,
            "kernels": self.kernels,
            "j_per_inference": self.j_per_inference,
            "latency_ms": self.latency_s * 1e3,
            "batch_size": m.items_per_call,
            "inferences": m.items,
            "energy_j": m.energy_j,
            "uncertainty_j": m.uncertainty_j,
            "duration_s": m.duration_s,
            "size_bytes": self.size_bytes,
            "accuracy": self.accuracy,
            "source": m.source,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class QuantizationResult:
    """fp32 against its int8 variants, measured interleaved in one run.

    Attributes:
        model: the model spec.
        dataset: the dataset accuracy was measured on.
        batch_size: inputs per forward pass.
        variants: ``fp32`` first, then the int8 variants that could be made.
        skipped: variant -> why it was not made.
        max_accuracy_drop: the largest accuracy loss accepted for the pick (0..1).
        best: the variant with the lowest J/inference within that loss, or None.
        run_id: the tracker run (one window per variant and round).
        source: where the energy comes from.
        notes: what the figures include and exclude.
    """

    model: str
    dataset: str
    batch_size: int
    variants: tuple[QuantVariant, ...]
    skipped: dict[str, str]
    max_accuracy_drop: float
    best: str | None
    run_id: str
    source: str
    notes: tuple[str, ...] = ()

    def variant(self, name: str) -> QuantVariant:
        """The variant with this name.

        Raises:
            KeyError: no such variant.
        """
        for v in self.variants:
            if v.variant == name:
                return v
        raise KeyError(name)

    def energy_ratio(self, name: str) -> float:
        """fp32's J/inference over the variant's: how many times less energy it uses."""
        return self.variant("fp32").j_per_inference / self.variant(name).j_per_inference

    def accuracy_drop_pp(self, name: str) -> float:
        """fp32 accuracy minus the variant's, in percentage points."""
        return (self.variant("fp32").accuracy - self.variant(name).accuracy) * 100.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the ``--json`` output and the stored study results."""
        variants = []
        for v in self.variants:
            d = v.to_dict()
            d["energy_ratio_vs_fp32"] = self.energy_ratio(v.variant)
            d["accuracy_drop_pp"] = self.accuracy_drop_pp(v.variant)
            variants.append(d)
        return {
            "model": self.model,
            "dataset": self.dataset,
            "batch_size": self.batch_size,
            "baseline": "fp32",
            "variants": variants,
            "skipped": dict(self.skipped),
            "max_accuracy_drop_pp": self.max_accuracy_drop * 100.0,
            "best": self.best,
            "run_id": self.run_id,
            "source": self.source,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ZooEntry:
    """One torchvision model measured on random weights.

    Attributes:
        model: torchvision name.
        family: its architecture family (``resnet``).
        year: year of the architecture's paper (first arXiv / conference version).
        top1: ImageNet-1K top-1 accuracy of torchvision's DEFAULT weights, in %, from the
            weights' metadata (nothing downloaded).
        gflops: GFLOPs per image at ``input_size`` from the same metadata, in GFLOP.
        params: parameters (count).
        input_size: side of the square input, in pixels (the weights' evaluation crop).
        measurement: the energy window.
        on_pareto_front: no other model has both less energy per image and higher top-1.
    """

    model: str
    family: str
    year: int
    top1: float
    gflops: float
    params: int
    input_size: int
    measurement: Measurement
    on_pareto_front: bool = False

    @property
    def j_per_image(self) -> float:
        """Energy per image, in J."""
        return self.measurement.energy_per_item_j

    @property
    def latency_s(self) -> float:
        """Wall time of one batch, in s."""
        return self.measurement.s_per_call

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (latency in ms)."""
        m = self.measurement
        return {
            "model": self.model,
            "family": self.family,
            "year": self.year,
            "top1": self.top1,
            "gflops": self.gflops,
            "params": self.params,
            "input_size": self.input_size,
            "j_per_image": self.j_per_image,
            "latency_ms": self.latency_s * 1e3,
            "batch_size": m.items_per_call,
            "images": m.items,
            "energy_j": m.energy_j,
            "uncertainty_j": m.uncertainty_j,
            "duration_s": m.duration_s,
            "source": m.source,
            "on_pareto_front": self.on_pareto_front,
        }


@dataclass(frozen=True)
class ZooResult:
    """The model-zoo trend: energy per image against year and accuracy.

    Attributes:
        entries: one per model, sorted by year then name.
        batch_size: images per forward pass.
        trend_per_year: fitted growth of J/image per year (0.25 = +25 %/year), from a
            least-squares line of log10(J/image) on year; None with fewer than 2 years.
        shufflenet: what was measured about ShuffleNetV2 models against the trend, or {}.
        plots: files written.
        run_id: the tracker run (one window per model).
        source: where the energy comes from.
        notes: what the figures include and exclude.
    """

    entries: tuple[ZooEntry, ...]
    batch_size: int
    trend_per_year: float | None
    shufflenet: dict[str, Any]
    plots: tuple[str, ...]
    run_id: str
    source: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the ``--json`` output and the stored study results."""
        return {
            "batch_size": self.batch_size,
            "models": [e.to_dict() for e in self.entries],
            "pareto_front": [e.model for e in self.entries if e.on_pareto_front],
            "trend_per_year": self.trend_per_year,
            "shufflenet": self.shufflenet,
            "plots": list(self.plots),
            "run_id": self.run_id,
            "source": self.source,
            "notes": list(self.notes),
        }
