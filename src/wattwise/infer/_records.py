"""Frozen records of inference measurements. Units are in the field names (J, W, s, B).

``to_dict`` (from :class:`~wattwise._records.Record`) gives the JSON shape of each command's
``--json`` output and of the results a study stores: the fields in their own units, and
latencies also in milliseconds (``p95_ms``, derived) for reading. Energy per input is
``energy_per_item_j`` everywhere (per request, per inference, per image).

Why ~550 lines: the three inference levers' results (batching and its load sweep,
quantization, the zoo) share their measured rows and their JSON rules; one module keeps
those shared rows beside every record that nests them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from wattwise._records import Provenance
from wattwise._records.base import Record
from wattwise._records.charts import BarData, ChartData, FrontData
from wattwise.protocol import Measurement

__all__ = [
    "BatchingResult",
    "IdlePower",
    "PolicyResult",
    "QuantVariant",
    "QuantizationResult",
    "ZooEntry",
    "ZooResult",
]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


@dataclass(frozen=True)
class IdlePower(Record):
    """Idle power measured in a run: windows in which the process only slept.

    Attributes:
        power_w: their energy over their time, in W (in the run's scope).
        uncertainty_w: one-sigma uncertainty of ``power_w``, in W.
        duration_s: the idle windows' total wall time, in s.
        source: where the energy comes from.
    """

    power_w: float
    uncertainty_w: float
    duration_s: float
    source: str

    @classmethod
    def of(cls, windows: Sequence[Measurement]) -> IdlePower:
        """The mean power of measured idle windows."""
        seconds = sum(m.duration_s for m in windows)
        if seconds <= 0:
            return cls(0.0, 0.0, 0.0, str(Provenance.combine(m.source for m in windows)))
        return cls(
            power_w=sum(m.energy_j for m in windows) / seconds,
            uncertainty_w=sum(m.uncertainty_j for m in windows) / seconds,
            duration_s=seconds,
            source=str(Provenance.combine(m.source for m in windows)),
        )


@dataclass(frozen=True)
class PolicyResult(Record):
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
        serves: how many times the stream was served in the window (the protocol's
            shortest window); ``requests``, ``batches`` and the times are summed over them.
        window_s: the window's wall time, in s (real seconds, with either clock).
        measured_j: the window's measured energy, in J (``energy_j`` less any given idle).
        net_energy_j: ``measured_j`` less the idle power measured in the same run times
            ``window_s``: what serving added on top of idle, in J; None without an idle
            measurement.
        net_uncertainty_j: one-sigma uncertainty of ``net_energy_j`` (the window's plus
            the idle power's times ``window_s``), in J, or None.
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
    serves: int = 1
    window_s: float = 0.0
    measured_j: float | None = None
    net_energy_j: float | None = None
    net_uncertainty_j: float | None = None

    derived: ClassVar[tuple[str, ...]] = (
        "energy_per_item_j",
        "net_energy_per_item_j",
        "mean_batch_size",
        "busy_share",
        "throughput_rps",
        "mean_power_w",
        "max_wait_ms",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "mean_latency_ms",
    )

    @property
    def energy_per_item_j(self) -> float:
        """Energy per request, in J."""
        return self.energy_j / self.requests

    @property
    def net_energy_per_item_j(self) -> float | None:
        """Energy per request net of idle, in J, or None without an idle measurement."""
        return None if self.net_energy_j is None else self.net_energy_j / self.requests

    def net_of(self, idle: IdlePower | None) -> PolicyResult:
        """This result with its energy net of ``idle`` (unchanged for None)."""
        if idle is None:
            return self
        measured = self.measured_j if self.measured_j is not None else self.energy_j
        return replace(
            self,
            net_energy_j=measured - idle.power_w * self.window_s,
            net_uncertainty_j=self.uncertainty_j + idle.uncertainty_w * self.window_s,
        )

    @property
    def busy_share(self) -> float:
        """Share of the run spent serving batches (0..1)."""
        return self.busy_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def max_wait_ms(self) -> float | None:
        """``max_wait_s`` in ms, or None."""
        return _ms(self.max_wait_s)

    @property
    def p50_ms(self) -> float:
        """Median latency, in ms."""
        return self.latencies_s[0] * 1e3

    @property
    def p95_ms(self) -> float:
        """95th percentile latency, in ms."""
        return self.latencies_s[1] * 1e3

    @property
    def p99_ms(self) -> float:
        """99th percentile latency, in ms."""
        return self.latencies_s[2] * 1e3

    @property
    def mean_latency_ms(self) -> float:
        """Mean latency, in ms."""
        return self.mean_latency_s * 1e3

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


@dataclass(frozen=True)
class BatchingResult(Record):
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
        measured_idle: the idle power measured in the same run and subtracted for the
            net figures, or None.
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
    measured_idle: IdlePower | None = None

    kind: ClassVar[str] = "batching"
    derived: ClassVar[tuple[str, ...]] = (
        "slo_ms",
        "ratio_to_batch1",
        "net_ratio_to_batch1",
        "tuned_for",
    )

    @property
    def slo_ms(self) -> float | None:
        """``slo_s`` in ms, or None."""
        return _ms(self.slo_s)

    @property
    def batch1_busy_share(self) -> float | None:
        """Share of the run ``batch=1`` kept the server busy (0..1), or None if not served."""
        one = next((p for p in self.policies if p.policy == "batch=1"), None)
        return None if one is None else one.busy_share

    @property
    def tuned_for(self) -> dict[str, Any]:
        """The load the pick was tuned for: arrivals, and how busy ``batch=1`` kept the
        server under them; ``text`` says it in words."""
        return {
            "rate_rps": self.rate_rps,
            "arrival": self.arrival,
            "jitter": self.jitter,
            "batch1_busy_share": self.batch1_busy_share,
            "text": load_phrase(self.rate_rps, self.arrival, self.jitter, self.batch1_busy_share),
        }

    @property
    def net_ratio_to_batch1(self) -> float | None:
        """Net-of-idle J/request of the pick over that of ``batch=1``, or None."""
        best = self.best_policy
        one = next((p for p in self.policies if p.policy == "batch=1"), None)
        if best is None or one is None:
            return None
        b, o = best.net_energy_per_item_j, one.net_energy_per_item_j
        if b is None or o is None or o <= 0:
            return None
        return b / o

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
        if best is None or one is None or one.energy_per_item_j <= 0:
            return None
        return best.energy_per_item_j / one.energy_per_item_j

    def charts(self) -> tuple[ChartData, ...]:
        """The energy per request of each policy."""
        return (
            BarData(
                tuple(p.policy for p in self.policies),
                tuple(p.energy_per_item_j for p in self.policies),
                "energy per request (J)",
                "Energy per request of each batching policy under the same request stream.",
            ),
        )


def load_phrase(rate_rps: float, arrival: str, jitter: float, busy: float | None) -> str:
    """``16 req/s (jitter +-20 %), where batch=1 keeps the server 19 % busy``."""
    how = f"jitter +-{jitter * 100:.0f} %" if arrival == "jitter" else arrival
    load = f"{rate_rps:g} req/s ({how})"
    if busy is None:
        return f"{load} (batch=1 not served)"
    return f"{load}, where batch=1 keeps the server {busy * 100:.0f} % busy"


class _MeasuredRow:
    """A row whose figures come from one measurement: its keys are merged into the row's
    JSON, with the batch latency in ms beside them."""

    measurement: Measurement

    flattened: ClassVar[tuple[str, ...]] = ("measurement",)
    derived: ClassVar[tuple[str, ...]] = ("latency_ms",)

    @property
    def energy_per_item_j(self) -> float:
        """Energy per input (an image, a request), in J."""
        return self.measurement.energy_per_item_j

    @property
    def latency_s(self) -> float:
        """Wall time of one batch, in s."""
        return self.measurement.s_per_call

    @property
    def latency_ms(self) -> float:
        """Wall time of one batch, in ms."""
        return self.latency_s * 1e3


@dataclass(frozen=True)
class QuantVariant(_MeasuredRow, Record):
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
        rounds_energy_per_item_j: energy per inference of each interleaved round, in J
            (their spread is the repeat-to-repeat noise).
    """

    variant: str
    method: str
    kernels: str
    measurement: Measurement
    size_bytes: int
    accuracy: float
    notes: tuple[str, ...] = ()
    rounds_energy_per_item_j: tuple[float, ...] = ()


@dataclass(frozen=True)
class QuantizationResult(Record):
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

    kind: ClassVar[str] = "quantization"
    derived: ClassVar[tuple[str, ...]] = ("baseline", "max_accuracy_drop_pp")

    @property
    def baseline(self) -> str:
        """The variant the others are compared with."""
        return "fp32"

    @property
    def max_accuracy_drop_pp(self) -> float:
        """``max_accuracy_drop`` in percentage points."""
        return self.max_accuracy_drop * 100.0

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
        return self.variant("fp32").energy_per_item_j / self.variant(name).energy_per_item_j

    def accuracy_drop_pp(self, name: str) -> float:
        """fp32 accuracy minus the variant's, in percentage points."""
        return (self.variant("fp32").accuracy - self.variant(name).accuracy) * 100.0

    def charts(self) -> tuple[ChartData, ...]:
        """The energy per inference of each variant."""
        return (
            BarData(
                tuple(v.variant for v in self.variants),
                tuple(v.energy_per_item_j for v in self.variants),
                "energy per inference (J)",
                "Energy per inference of each variant of the model.",
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The generic dict, each variant with its ratios to fp32 beside it."""
        out = super().to_dict()
        for v, d in zip(self.variants, out["variants"], strict=True):
            d["energy_ratio_vs_fp32"] = self.energy_ratio(v.variant)
            d["accuracy_drop_pp"] = self.accuracy_drop_pp(v.variant)
        return out


@dataclass(frozen=True)
class ZooEntry(_MeasuredRow, Record):
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


@dataclass(frozen=True)
class ZooResult(Record):
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

    kind: ClassVar[str] = "zoo"
    derived: ClassVar[tuple[str, ...]] = ("pareto_front",)

    @property
    def pareto_front(self) -> list[str]:
        """Models on the energy/top-1 Pareto front."""
        return [e.model for e in self.entries if e.on_pareto_front]

    def charts(self) -> tuple[ChartData, ...]:
        """Energy per image against ImageNet top-1, with the Pareto front."""
        return (
            FrontData(
                tuple(e.model for e in self.entries),
                tuple(e.energy_per_item_j for e in self.entries),
                tuple(e.top1 for e in self.entries),
                "energy (J)",
                "accuracy",
                "Energy per image against ImageNet top-1, with the Pareto front.",
            ),
        )
