"""Frozen records of studies. Units are in the field names (J, s, W); accuracies are
fractions (0..1), accuracy changes in percentage points (``_pp``), relative changes are
fractions (``_frac``: -0.4 = 40 % less).

Over 500 lines on purpose: the three studies' records share their rows (trials, repeated
runs, versus, saving) and are read together as one schema (docs/studies.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from wattwise._records import Provenance
from wattwise._records.base import Record
from wattwise._records.charts import BarData, ChartData, FrontData
from wattwise._units import format_energy
from wattwise.protocol._stats import Comparison, Summary, summarize

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "ArchitectureStudy",
    "EnvironmentResult",
    "EnvironmentStudy",
    "GpuFit",
    "GpuUsage",
    "LayerRow",
    "LayerStudy",
    "ModelResult",
    "RepeatedRuns",
    "Saving",
    "Setting",
    "Trial",
    "VariantResult",
    "Versus",
]

#: Version of the ``results`` JSON a study stores; bumped when a field changes meaning
#: (2: the record base's field names, see CHANGELOG.md).
RESULTS_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Trial(Record):
    """One measured training run of a study.

    Attributes:
        label: the configuration it belongs to (``cnn``, ``threads=2 batch=64 fp32 cpu``).
        repeat: 1-based repeat number.
        seed: the seed of its weights and batch order.
        run_id: the tracked run (stored with the study when a store is used).
        energy_j: energy of the whole fit (epochs with their validation passes), in J.
        uncertainty_j: one-sigma uncertainty of ``energy_j`` from the meters, in J.
        duration_s: wall-clock length of the fit, in s.
        val_accuracy: validation accuracy after the last epoch (0..1).
        epochs: epochs that ran.
        energy_source: measured (which sensor) or estimated (which model).
        stop_reason: why training ended.
    """

    label: str
    repeat: int
    seed: int
    run_id: str
    energy_j: float
    uncertainty_j: float
    duration_s: float
    val_accuracy: float
    epochs: int
    energy_source: str
    stop_reason: str


@dataclass(frozen=True)
class RepeatedRuns(Record):
    """The repeats of one configuration, with medians and spread.

    Attributes:
        label: the configuration.
        trials: its runs, in the order they ran.
    """

    label: str
    trials: tuple[Trial, ...]

    @property
    def energy_j(self) -> Summary:
        """Energy per run, in J."""
        return summarize([t.energy_j for t in self.trials])

    @property
    def duration_s(self) -> Summary:
        """Wall-clock time per run, in s."""
        return summarize([t.duration_s for t in self.trials])

    @property
    def val_accuracy(self) -> Summary:
        """Final validation accuracy per run (0..1)."""
        return summarize([t.val_accuracy for t in self.trials])

    @property
    def energy_source(self) -> str:
        """Where the energy figures come from (one line; several when runs differed)."""
        return str(Provenance.combine(t.energy_source for t in self.trials))

    def to_dict(self) -> dict[str, Any]:
        """The fields, and the medians as plain numbers with their spreads beside them."""
        e, d, a = self.energy_j, self.duration_s, self.val_accuracy
        return {
            **super().to_dict(),
            "energy_j": e.median,
            "energy_j_spread": e.to_dict(),
            "energy_source": self.energy_source,
            "duration_s": d.median,
            "duration_s_spread": d.to_dict(),
            "val_accuracy": a.median,
            "val_accuracy_spread": a.to_dict(),
        }


@dataclass(frozen=True)
class Versus(Record):
    """A configuration against the study's reference, both measured in the same study.

    Attributes:
        reference: label of the reference configuration.
        energy_change_frac: change of the median energy (-0.4: 40 % less than the reference).
        duration_change_frac: change of the median time.
        accuracy_change_pp: change of the median accuracy, in percentage points.
        energy_test: significance of the energy difference.
        accuracy_test: significance of the accuracy difference.
    """

    reference: str
    energy_change_frac: float
    duration_change_frac: float
    accuracy_change_pp: float
    energy_test: Comparison
    accuracy_test: Comparison


@dataclass(frozen=True)
class Saving(Record):
    """The headline: the cheapest configuration within a tolerance of the reference's
    accuracy, and the energy it saves against that reference, measured in the same study.

    Attributes:
        reference: what is saved against (the most accurate model; the baseline setting).
        choice: the cheapest configuration within ``within_pp`` of ``reference_accuracy``.
        within_pp: the accuracy tolerance, in percentage points.
        reference_energy_j: median energy of the reference, in J.
        choice_energy_j: median energy of the choice, in J.
        reference_val_accuracy: median accuracy of the reference (0..1).
        choice_val_accuracy: median accuracy of the choice (0..1).
        energy_test: significance of the energy difference (None when choice = reference).
        energy_source: provenance of the energies.
    """

    reference: str
    choice: str
    within_pp: float
    reference_energy_j: float
    choice_energy_j: float
    reference_val_accuracy: float
    choice_val_accuracy: float
    energy_test: Comparison | None
    energy_source: str

    derived: ClassVar[tuple[str, ...]] = (
        "saved_j",
        "saved_frac",
        "accuracy_change_pp",
        "basis",
        "description",
    )

    @property
    def basis(self) -> str:
        """What the figures are."""
        return "medians over repeats measured in this study, same machine and settings"

    @property
    def description(self) -> str:
        """:meth:`describe`'s line."""
        return self.describe()

    @property
    def saved_j(self) -> float:
        """Median energy saved, in J (negative: the choice costs more)."""
        return self.reference_energy_j - self.choice_energy_j

    @property
    def saved_frac(self) -> float:
        """Share of the reference's median energy saved."""
        if self.reference_energy_j <= 0:
            return 0.0
        return self.saved_j / self.reference_energy_j

    @property
    def accuracy_change_pp(self) -> float:
        """Accuracy of the choice minus the reference's, in percentage points."""
        return (self.choice_val_accuracy - self.reference_val_accuracy) * 100.0

    def describe(self) -> str:
        """One line with the figures and their basis."""
        if self.choice == self.reference:
            return (
                f"{self.reference} is also the cheapest within {self.within_pp:g} pp of its "
                "accuracy: nothing to save here"
            )
        test = f"; energy difference {self.energy_test.describe()}" if self.energy_test else ""
        return (
            f"{self.choice} saves {self.saved_frac:.0%} energy "
            f"({format_energy(self.reference_energy_j)} -> {format_energy(self.choice_energy_j)}, "
            f"medians) for {self.accuracy_change_pp:+.2f} pp "
            f"accuracy against {self.reference}, measured in this study "
            f"[{self.energy_source}]{test}"
        )


@dataclass(frozen=True)
class ModelResult(Record):
    """One model of an architecture study.

    Attributes:
        model: the model spec (``cnn:width=32``, ``resnet18``).
        params: trainable and frozen parameters.
        flops: forward FLOPs per input sample (torch.utils.flop_counter: a multiply-add
            counts 2; only matrix products and convolutions are counted).
        train_flops: forward + backward FLOPs per input sample, counted the same way.
        runs: its repeated training runs.
        pareto: on the energy/accuracy Pareto front (medians).
        versus: against the most accurate model (None for that model itself).
    """

    model: str
    params: int
    flops: int
    train_flops: int
    runs: RepeatedRuns
    pareto: bool
    versus: Versus | None

    flattened: ClassVar[tuple[str, ...]] = ("runs",)
    derived: ClassVar[tuple[str, ...]] = ("energy_per_accuracy_point_j",)

    @property
    def energy_per_accuracy_point_j(self) -> float | None:
        """Median energy per percentage point of median accuracy, in J/pp (None at 0 %)."""
        acc = self.runs.val_accuracy.median
        return self.runs.energy_j.median / (acc * 100.0) if acc > 0 else None


@dataclass(frozen=True)
class ArchitectureStudy(Record):
    """Models trained on the same data, budget and stopping rule, repeated.

    Attributes:
        study_id: the study's id (in the store when ``stored``).
        name: its name.
        dataset: the dataset spec.
        settings: the training settings every model shared (JSON-ready).
        method: the measurement method (JSON-ready, see :class:`StudyMethod`).
        models: one result per model, in the order given.
        reference: the most accurate model (median accuracy; ties: the cheaper).
        saving: the headline saving against ``reference``.
        notes: what to keep in mind reading the figures.
        stored: whether the study and its runs are in a store.
    """

    study_id: str
    name: str
    dataset: str
    settings: dict[str, Any]
    method: dict[str, Any]
    models: tuple[ModelResult, ...]
    reference: str
    saving: Saving
    notes: tuple[str, ...] = ()
    stored: bool = False

    kind: ClassVar[str] = "architectures"
    schema_version: ClassVar[int] = RESULTS_SCHEMA_VERSION
    derived: ClassVar[tuple[str, ...]] = ("pareto_front",)

    @property
    def pareto_front(self) -> list[str]:
        """Models on the front, cheapest first."""
        front = [m for m in self.models if m.pareto]
        return [m.model for m in sorted(front, key=lambda m: m.runs.energy_j.median)]

    def charts(self) -> tuple[ChartData, ...]:
        """Median energy against median accuracy per model, with the Pareto front."""
        return (
            FrontData(
                tuple(m.model for m in self.models),
                tuple(m.runs.energy_j.median for m in self.models),
                tuple(m.runs.val_accuracy.median for m in self.models),
                "energy (J)",
                "accuracy",
                "Energy against validation accuracy per model, with the Pareto front.",
            ),
        )


@dataclass(frozen=True)
class LayerRow(Record):
    """One module's share of a training step.

    Attributes:
        name: the module's qualified name (``features.0``), or ``(model)`` for operations in
            the model's own ``forward``; outside every module: ``(optimizer)`` (its step and
            ``zero_grad``), ``(gradient accumulation)``, ``(loss and other)``; and
            ``(untraced)`` for step time no operation covers (Python, framework and profiler
            overhead; on a GPU, idle time).
        type: ``conv``, ``linear``, ``norm``, ``activation``, ``pooling``, ``attention``,
            ``other`` (containers' own operations, dropout, flatten...), ``optimizer``,
            ``outside`` or ``untraced``.
        module: the module's class name (empty for the pseudo rows).
        params: the module's own parameters (not its children's).
        flops: own forward FLOPs per input sample.
        train_flops: own forward + backward FLOPs per input sample.
        forward_s: time of its own forward operations per training step, in s (profiled;
            for the pseudo rows, their whole time).
        backward_s: time of the backward operations of those, per step, in s (profiled).
        time_share: share of the profiled step time.
        energy_share: share of the measured energy attributed to it (= ``time_share``).
        energy_per_step_j: measured energy per step times ``energy_share``, in J
            (attributed, not measured per module).
    """

    name: str
    type: str
    module: str
    params: int
    flops: int
    train_flops: int
    forward_s: float
    backward_s: float
    time_share: float
    energy_share: float
    energy_per_step_j: float

    derived: ClassVar[tuple[str, ...]] = ("energy_method",)

    @property
    def energy_method(self) -> str:
        """Per-module energy is attributed by time share, not measured per module."""
        return "attributed"


@dataclass(frozen=True)
class VariantResult(Record):
    """A smaller variant of the studied model, trained like the base model.

    Attributes:
        model: the variant's spec.
        change: what was shrunk or dropped (``conv width 16 -> 8``).
        params: its parameters.
        flops: forward FLOPs per input sample.
        runs: its repeated training runs.
        versus: against the base model trained in the same study (None for the base).
    """

    model: str
    change: str
    params: int
    flops: int
    runs: RepeatedRuns
    versus: Versus | None

    flattened: ClassVar[tuple[str, ...]] = ("runs",)


@dataclass(frozen=True)
class LayerStudy(Record):
    """Where a model's training energy goes, module by module, and what smaller variants save.

    Attributes:
        study_id: the study's id.
        name: its name.
        model: the model spec.
        input_shape: ``(C, H, W)`` of one input.
        settings: batch size, device, threads, steps per window... (JSON-ready).
        method: the measurement method (JSON-ready).
        steps_per_window: training steps in each measured window.
        energy_per_step_j: measured energy per training step over the repeats, in J.
        step_s: measured wall time per training step over the repeats, in s.
        energy_source: provenance of the measured energy.
        profiler_overhead_frac: how much longer a profiled step took than a measured one.
        layers: one row per module with work, then the pseudo rows.
        variants: the base model and its variants, when asked for.
        notes: what to keep in mind.
        stored: whether the study is in a store.
    """

    study_id: str
    name: str
    model: str
    input_shape: tuple[int, ...]
    settings: dict[str, Any]
    method: dict[str, Any]
    steps_per_window: int
    energy_per_step_j: Summary = field(metadata={"spread": True})
    step_s: Summary = field(metadata={"spread": True})
    energy_source: str
    profiler_overhead_frac: float
    layers: tuple[LayerRow, ...]
    variants: tuple[VariantResult, ...] = ()
    notes: tuple[str, ...] = ()
    stored: bool = False

    kind: ClassVar[str] = "layers"
    schema_version: ClassVar[int] = RESULTS_SCHEMA_VERSION
    derived: ClassVar[tuple[str, ...]] = ("energy_attribution", "by_type")

    @property
    def energy_attribution(self) -> str:
        """How the rows' energy is found."""
        return (
            "attributed: each row's energy is the measured energy per step times its "
            "share of the profiled step time"
        )

    @property
    def by_type(self) -> dict[str, float]:
        """Energy share per layer type, largest first."""
        shares: dict[str, float] = {}
        for row in self.layers:
            shares[row.type] = shares.get(row.type, 0.0) + row.energy_share
        return dict(sorted(shares.items(), key=lambda kv: -kv[1]))

    def charts(self) -> tuple[ChartData, ...]:
        """The energy share per layer type."""
        shares = self.by_type
        return (
            BarData(
                tuple(shares),
                tuple(shares.values()),
                "share of energy (attributed)",
                "Energy share per layer type, attributed by time share of the measured window.",
            ),
        )


@dataclass(frozen=True)
class Setting(Record):
    """One training environment.

    Attributes:
        threads: PyTorch intra-op threads (None: PyTorch's default).
        batch_size: training batch size.
        precision: ``fp32`` or ``bf16`` (autocast).
        device: ``cpu``, ``cuda``, ``cuda:N``.
    """

    threads: int | None
    batch_size: int
    precision: str
    device: str

    derived: ClassVar[tuple[str, ...]] = ("label",)

    @property
    def label(self) -> str:
        """``threads=2 batch=64 fp32 cpu``."""
        threads = "default" if self.threads is None else str(self.threads)
        return f"threads={threads} batch={self.batch_size} {self.precision} {self.device}"


@dataclass(frozen=True)
class GpuUsage(Record):
    """How busy a GPU was during a run, from periodic samples.

    Attributes:
        device: the CUDA device (``cuda:0``).
        gpu_name: the board's name.
        samples: number of samples taken.
        utilisation_frac: median share of time a kernel was running (NVML "gpu"
            utilisation), 0..1.
        utilisation_p90_frac: 90th percentile of the same.
        power_w: mean power draw, in W.
        power_limit_w: the enforced power limit, in W.
        memory_used_frac: largest share of the board's memory in use.
    """

    device: str
    gpu_name: str
    samples: int
    utilisation_frac: float
    utilisation_p90_frac: float
    power_w: float
    power_limit_w: float
    memory_used_frac: float

    derived: ClassVar[tuple[str, ...]] = ("source",)

    @property
    def source(self) -> str:
        """Where the figures come from."""
        return "measured (nvml utilisation and power sampling)"


@dataclass(frozen=True)
class GpuFit(Record):
    """Whether a GPU is oversized for the work it ran.

    Attributes:
        oversized: True when the GPU mostly idled and drew a small share of its power limit.
        reason: one line with the figures.
    """

    oversized: bool
    reason: str


@dataclass(frozen=True)
class EnvironmentResult(Record):
    """One training environment of an environment study.

    Attributes:
        setting: the environment.
        runs: its repeated training runs.
        versus: against the baseline setting (None for the baseline).
        gpu: GPU usage over its runs (None off GPU).
        gpu_fit: whether the GPU was oversized (None off GPU).
    """

    setting: Setting
    runs: RepeatedRuns
    versus: Versus | None
    gpu: GpuUsage | None = None
    gpu_fit: GpuFit | None = None

    flattened: ClassVar[tuple[str, ...]] = ("setting", "runs")


@dataclass(frozen=True)
class EnvironmentStudy(Record):
    """The same training work under several environments.

    Attributes:
        study_id: the study's id.
        name: its name.
        model: the model spec.
        dataset: the dataset spec.
        settings: the training settings shared by every environment (JSON-ready).
        method: the measurement method (JSON-ready).
        environments: one per environment; the first is the baseline.
        recommendation: the cheapest environment within the tolerance of the baseline's
            accuracy, and what it saves against the baseline.
        notes: what to keep in mind.
        stored: whether the study is in a store.
    """

    study_id: str
    name: str
    model: str
    dataset: str
    settings: dict[str, Any]
    method: dict[str, Any]
    environments: tuple[EnvironmentResult, ...]
    recommendation: Saving
    notes: tuple[str, ...] = ()
    stored: bool = False

    kind: ClassVar[str] = "environments"
    schema_version: ClassVar[int] = RESULTS_SCHEMA_VERSION
    derived: ClassVar[tuple[str, ...]] = ("baseline",)

    @property
    def baseline(self) -> str:
        """Label of the baseline environment (the first value of every list)."""
        return self.environments[0].setting.label

    def charts(self) -> tuple[ChartData, ...]:
        """The median energy of each environment."""
        return (
            BarData(
                tuple(e.setting.label for e in self.environments),
                tuple(e.runs.energy_j.median for e in self.environments),
                "energy (J)",
                "Median energy of the same work per environment setting.",
            ),
        )
