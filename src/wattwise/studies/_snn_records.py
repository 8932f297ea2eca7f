"""The records of the spiking-network study (``kind = "snn"``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from wattwise._records.base import Record
from wattwise._records.charts import BarData, ChartData, FrontData
from wattwise.protocol import Repeated
from wattwise.studies._opcount import OPCOUNT_SOURCE, OpCount, OpEnergy
from wattwise.studies._records import RESULTS_SCHEMA_VERSION, RepeatedRuns

__all__ = ["CAUTION", "Crossover", "SnnStudy", "SnnVariant"]

#: The known caution the study reports against (Yan et al., arXiv 2409.08290).
CAUTION = (
    "Yan et al. (arXiv 2409.08290, 'Reconsidering the energy efficiency of spiking neural "
    "networks'): once memory traffic is counted, a spiking network needs very low firing "
    "rates to beat a quantized ANN; operation counts that leave memory out flatter SNNs"
)


@dataclass(frozen=True)
class SnnVariant(Record):
    """One network of the study: the ANN, or the SNN at one T.

    Attributes:
        label: ``ann`` or ``snn T=4``.
        model: its spec.
        spiking: whether it is a spiking network.
        steps: time steps per inference (1 for the ANN).
        runs: its measured training runs (energy measured by the tracker, accuracy).
        ops: its operations per inference, counted on validation inputs.
        op_energy: its operation-count energy per inference at each priced precision
            (estimated, :data:`OPCOUNT_SOURCE`).
        inference: the tracker's energy per inference for running it in PyTorch here
            (measured or estimated, as its ``source`` says), repeated.
    """

    label: str
    model: str
    spiking: bool
    steps: int
    runs: RepeatedRuns
    ops: OpCount
    op_energy: tuple[OpEnergy, ...]
    inference: Repeated

    def op_pj(self, precision: str) -> float:
        """Operation-count energy per inference at ``precision``, in pJ (NaN: not priced)."""
        for e in self.op_energy:
            if e.precision == precision:
                return e.total_pj
        return float("nan")


@dataclass(frozen=True)
class Crossover(Record):
    """Where a spiking network's operation-count energy meets an ANN's.

    Attributes:
        steps: the SNN's T.
        snn_precision: the precision the SNN is priced at.
        against: the ANN priced (``ann fp32``, ``ann int8``).
        snn_pj: the SNN's energy per inference at its counted firing rate, in pJ.
        ann_pj: the ANN's, in pJ.
        input_rate: the SNN's counted input firing rate (spike-fed layers, by fan-out).
        crossover_rate: the input firing rate at which both are equal (below it the SNN
            is cheaper; negative: never; above 1: at any rate); None: nothing spike-fed.
    """

    steps: int
    snn_precision: str
    against: str
    snn_pj: float
    ann_pj: float
    input_rate: float
    crossover_rate: float | None

    derived: ClassVar[tuple[str, ...]] = ("snn_cheaper",)

    @property
    def snn_cheaper(self) -> bool:
        """Whether the SNN, at its counted rate, costs less than the ANN."""
        return self.snn_pj < self.ann_pj


@dataclass(frozen=True)
class SnnStudy(Record):
    """Spiking networks at several T against the ANN of the same shape.

    Attributes:
        study_id: the study's id (in the store when ``stored``).
        name: its name.
        dataset: the dataset spec.
        settings: training and counting settings (JSON-ready).
        method: the measurement method (JSON-ready).
        variants: the ANN first, then the SNN per T.
        crossovers: per T and priced ANN, the crossover firing rate.
        memory_model: what memory traffic the operation counts include.
        op_source: how the operation-count figures are made.
        caution: the known caution (Yan et al.).
        notes: what to keep in mind reading the figures.
        stored: whether the study and its runs are in a store.
    """

    study_id: str
    name: str
    dataset: str
    settings: dict[str, Any]
    method: dict[str, Any]
    variants: tuple[SnnVariant, ...]
    crossovers: tuple[Crossover, ...]
    memory_model: str
    op_source: str = OPCOUNT_SOURCE
    caution: str = CAUTION
    notes: tuple[str, ...] = ()
    stored: bool = False

    kind: ClassVar[str] = "snn"
    schema_version: ClassVar[int] = RESULTS_SCHEMA_VERSION

    def charts(self) -> tuple[ChartData, ...]:
        """Operation-count energy per network (estimated), and the tracker's energy per
        inference against accuracy (running in PyTorch here)."""
        bars: list[tuple[str, float]] = []
        for v in self.variants:
            for e in v.op_energy:
                bars.append((f"{v.label} {e.precision}", e.total_pj))
        return (
            BarData(
                tuple(label for label, _ in bars),
                tuple(value for _, value in bars),
                "energy per inference (pJ)",
                f"Operation-count energy per inference, {self.op_source}; "
                f"{self.memory_model}. An estimate of dedicated hardware, not a measurement.",
            ),
            FrontData(
                tuple(v.label for v in self.variants),
                tuple(v.inference.energy_per_item_j.median for v in self.variants),
                tuple(v.runs.val_accuracy.median for v in self.variants),
                "energy per inference, tracker (J)",
                "accuracy",
                "Energy per inference running each network in PyTorch on this machine "
                "(the tracker's figure, its provenance in the table) against validation "
                "accuracy.",
            ),
        )
