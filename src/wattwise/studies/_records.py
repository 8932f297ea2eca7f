"""Frozen records of studies. Units are in the field names (J, s, W); accuracies are
fractions (0..1), accuracy changes in percentage points (``_pp``), relative changes are
fractions (``_frac``: -0.4 = 40 % less)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wattwise._records import Provenance
from wattwise._units import format_energy
from wattwise.studies._stats import Comparison, Summary, summarize

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

#: Version of the ``results`` JSON a study stores; bumped when a field changes meaning.
RESULTS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Trial:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "label": self.label,
            "repeat": self.repeat,
            "seed": self.seed,
            "run_id": self.run_id,
            "energy_j": self.energy_j,
            "energy_uncertainty_j": self.uncertainty_j,
            "energy_source": self.energy_source,
            "duration_s": self.duration_s,
            "val_accuracy": self.val_accuracy,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
        }


@dataclass(frozen=True)
class RepeatedRuns:
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
        """Medians as plain numbers, spreads beside them, and the runs."""
        e, d, a = self.energy_j, self.duration_s, self.val_accuracy
        return {
            "energy_j": e.median,
            "energy_j_spread": e.to_dict(),
            "energy_source": self.energy_source,
            "duration_s": d.median,
            "duration_s_spread": d.to_dict(),
            "val_accuracy": a.median,
            "val_accuracy_spread": a.to_dict(),
            "runs": [t.to_dict() for t in self.trials],
        }


@dataclass(frozen=True)
class Versus:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "reference": self.reference,
            "energy_change_frac": self.energy_change_frac,
            "duration_change_frac": self.duration_change_frac,
            "accuracy_change_pp": self.accuracy_change_pp,
            "energy_test": self.energy_test.to_dict(),
            "accuracy_test": self.accuracy_test.to_dict(),
        }


@dataclass(frozen=True)
class Saving:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "reference": self.reference,
            "choice": self.choice,
            "within_pp": self.within_pp,
            "reference_energy_j": self.reference_energy_j,
            "choice_energy_j": self.choice_energy_j,
            "saved_j": self.saved_j,
            "saved_frac": self.saved_frac,
            "reference_val_accuracy": self.reference_val_accuracy,
            "choice_val_accuracy": self.choice_val_accuracy,
            "accuracy_change_pp": self.accuracy_change_pp,
            "energy_test": self.energy_test.to_dict() if self.energy_test else None,
            "energy_source": self.energy_source,
            "basis": "medians over repeats measured in this study, same machine and settings",
            "description": self.describe(),
        }


@dataclass(frozen=True)
class ModelResult:
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

    @property
    def energy_per_accuracy_point_j(self) -> float | None:
        """Median energy per percentage point of median accuracy, in J/pp (None at 0 %)."""
        acc = self.runs.val_accuracy.median
        return self.runs.energy_j.median / (acc * 100.0) if acc > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one row of ``models``)."""
        return {
            "model": self.model,
            "params": self.params,
            "flops": self.flops,
            "train_flops": self.train_flops,
            **self.runs.to_dict(),
            "energy_per_accuracy_point_j": self.energy_per_accuracy_point_j,
            "pareto": self.pareto,
            "versus": self.versus.to_dict() if self.versus else None,
        }


@dataclass(frozen=True)
class ArchitectureStudy:
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

    @property
    def pareto_front(self) -> list[str]:
        """Models on the front, cheapest first."""
        front = [m for m in self.models if m.pareto]
        return [m.model for m in sorted(front, key=lambda m: m.runs.energy_j.median)]

    def to_dict(self) -> dict[str, Any]:
        """The study's results (what is stored, and what ``--json`` prints)."""
        return {
            "kind": "architectures",
            "schema_version": RESULTS_SCHEMA_VERSION,
            "study_id": self.study_id,
            "name": self.name,
            "stored": self.stored,
            "dataset": self.dataset,
            "settings": self.settings,
            "method": self.method,
            "models": [m.to_dict() for m in self.models],
            "reference": self.reference,
            "pareto_front": self.pareto_front,
            "headline": self.saving.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class LayerRow:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one row of ``layers``)."""
        return {
            "name": self.name,
            "type": self.type,
            "module": self.module,
            "params": self.params,
            "flops": self.flops,
            "train_flops": self.train_flops,
            "forward_s": self.forward_s,
            "backward_s": self.backward_s,
            "time_share": self.time_share,
            "energy_share": self.energy_share,
            "energy_per_step_j": self.energy_per_step_j,
            "energy_method": "attributed",
        }


@dataclass(frozen=True)
class VariantResult:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one row of ``variants``)."""
        return {
            "model": self.model,
            "change": self.change,
            "params": self.params,
            "flops": self.flops,
            **self.runs.to_dict(),
            "versus": self.versus.to_dict() if self.versus else None,
        }


@dataclass(frozen=True)
class LayerStudy:
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
    energy_per_step_j: Summary
    step_s: Summary
    energy_source: str
    profiler_overhead_frac: float
    layers: tuple[LayerRow, ...]
    variants: tuple[VariantResult, ...] = ()
    notes: tuple[str, ...] = ()
    stored: bool = False

    @property
    def by_type(self) -> dict[str, float]:
        """Energy share per layer type, largest first."""
        shares: dict[str, float] = {}
        for row in self.layers:
            shares[row.type] = shares.get(row.type, 0.0) + row.energy_share
        return dict(sorted(shares.items(), key=lambda kv: -kv[1]))

    def to_dict(self) -> dict[str, Any]:
        """The study's results (what is stored, and what ``--json`` prints)."""
        return {
            "kind": "layers",
            "schema_version": RESULTS_SCHEMA_VERSION,
            "study_id": self.study_id,
            "name": self.name,
            "stored": self.stored,
            "model": self.model,
            "input_shape": list(self.input_shape),
            "settings": self.settings,
            "method": self.method,
            "steps_per_window": self.steps_per_window,
            "energy_per_step_j": self.energy_per_step_j.median,
            "energy_per_step_j_spread": self.energy_per_step_j.to_dict(),
            "step_s": self.step_s.median,
            "step_s_spread": self.step_s.to_dict(),
            "energy_source": self.energy_source,
            "energy_attribution": (
                "attributed: each row's energy is the measured energy per step times its "
                "share of the profiled step time"
            ),
            "profiler_overhead_frac": self.profiler_overhead_frac,
            "layers": [r.to_dict() for r in self.layers],
            "by_type": self.by_type,
            "variants": [v.to_dict() for v in self.variants],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Setting:
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

    @property
    def label(self) -> str:
        """``threads=2 batch=64 fp32 cpu``."""
        threads = "default" if self.threads is None else str(self.threads)
        return f"threads={threads} batch={self.batch_size} {self.precision} {self.device}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "threads": self.threads,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "device": self.device,
        }


@dataclass(frozen=True)
class GpuUsage:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "device": self.device,
            "gpu_name": self.gpu_name,
            "samples": self.samples,
            "utilisation_frac": self.utilisation_frac,
            "utilisation_p90_frac": self.utilisation_p90_frac,
            "power_w": self.power_w,
            "power_limit_w": self.power_limit_w,
            "memory_used_frac": self.memory_used_frac,
            "source": "measured (nvml utilisation and power sampling)",
        }


@dataclass(frozen=True)
class GpuFit:
    """Whether a GPU is oversized for the work it ran.

    Attributes:
        oversized: True when the GPU mostly idled and drew a small share of its power limit.
        reason: one line with the figures.
    """

    oversized: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"oversized": self.oversized, "reason": self.reason}


@dataclass(frozen=True)
class EnvironmentResult:
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one row of ``settings``)."""
        return {
            "label": self.setting.label,
            **self.setting.to_dict(),
            **self.runs.to_dict(),
            "versus": self.versus.to_dict() if self.versus else None,
            "gpu": self.gpu.to_dict() if self.gpu else None,
            "gpu_fit": self.gpu_fit.to_dict() if self.gpu_fit else None,
        }


@dataclass(frozen=True)
class EnvironmentStudy:
    """The same training work under several environments.

    Attributes:
        study_id: the study's id.
        name: its name.
        model: the model spec.
        dataset: the dataset spec.
        settings: the training settings shared by every environment (JSON-ready).
        method: the measurement method (JSON-ready).
        results: one per environment; the first is the baseline.
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
    results: tuple[EnvironmentResult, ...]
    recommendation: Saving
    notes: tuple[str, ...] = ()
    stored: bool = False

    @property
    def baseline(self) -> str:
        """Label of the baseline environment (the first value of every list)."""
        return self.results[0].setting.label

    def to_dict(self) -> dict[str, Any]:
        """The study's results (what is stored, and what ``--json`` prints)."""
        return {
            "kind": "environments",
            "schema_version": RESULTS_SCHEMA_VERSION,
            "study_id": self.study_id,
            "name": self.name,
            "stored": self.stored,
            "model": self.model,
            "dataset": self.dataset,
            "settings": self.settings,
            "method": self.method,
            "baseline": self.baseline,
            "environments": [r.to_dict() for r in self.results],
            "recommendation": self.recommendation.to_dict(),
            "notes": list(self.notes),
        }
