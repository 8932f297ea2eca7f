"""Records of the keypoint study (the sAIn pattern): a keypoint pipeline and a frame
pipeline trained to the same target accuracy, their training and inference energy, and
the cost of extracting the keypoints when it was measured. Units are in the field names;
accuracies are fractions (0..1); a ratio is the frame pipeline's energy over the keypoint
pipeline's (above 1: the keypoint pipeline spends less)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from wattwise._records.base import Record
from wattwise._records.charts import BarData, ChartData
from wattwise.protocol._measure import Repeated
from wattwise.protocol._stats import Summary
from wattwise.studies._records import RESULTS_SCHEMA_VERSION, RepeatedRuns

__all__ = ["Extraction", "KeypointStudy", "PipelineResult"]

#: What the record and the command say when no landmarker model was given.
NOT_INCLUDED = (
    "keypoint extraction not included: no landmarker model file was given "
    "(--landmarker PATH, MediaPipe's hand landmarker .task file)"
)

#: ... and when it was measured.
INCLUDED = "keypoint extraction included: MediaPipe's hand landmarker, measured per frame"


@dataclass(frozen=True)
class PipelineResult(Record):
    """One pipeline: its model trained to the target, and its inference measured.

    Attributes:
        label: ``keypoints`` (pipeline A: keypoint sequences into a lean recurrent network)
            or ``frames`` (pipeline B: the frames into a CNN).
        model: the model spec.
        dataset: the dataset spec it trained on (its view).
        params: trainable parameters.
        runs: its training runs (energy of each whole fit, to the target or the epoch cap).
        reached_target: how many of the runs reached the target accuracy.
        inference: the measured inference windows (one item = one clip).
        inference_accuracy: validation accuracy of the model whose inference was measured
            (the last repeat's).
    """

    label: str
    model: str
    dataset: str
    params: int
    runs: RepeatedRuns
    reached_target: int
    inference: Repeated
    inference_accuracy: float

    derived: ClassVar[tuple[str, ...]] = ("energy_per_clip_j",)

    @property
    def energy_per_clip_j(self) -> Summary:
        """Inference energy per clip over the repeats, in J."""
        return self.inference.energy_per_item_j


@dataclass(frozen=True)
class Extraction(Record):
    """Keypoint extraction measured with MediaPipe's hand landmarker on the rendered frames.

    Attributes:
        model_path: the landmarker model file.
        measured: the measured windows (one item = one frame).
        frames_per_clip: frames of a clip (extraction per clip = per frame times this).
        detected_frac: share of the frames where the landmarker found a hand.
    """

    model_path: str
    measured: Repeated
    frames_per_clip: int
    detected_frac: float

    derived: ClassVar[tuple[str, ...]] = ("energy_per_frame_j", "energy_per_clip_j")

    @property
    def energy_per_frame_j(self) -> Summary:
        """Extraction energy per frame over the repeats, in J."""
        return self.measured.energy_per_item_j

    @property
    def energy_per_clip_j(self) -> float:
        """Median extraction energy per clip, in J."""
        return self.energy_per_frame_j.median * self.frames_per_clip


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


@dataclass(frozen=True)
class KeypointStudy(Record):
    """The keypoint pipeline against the frame pipeline at the same target accuracy.

    Attributes:
        study_id: the study's id (in the store when ``stored``).
        name: its name.
        dataset: the gesture spec both views come from (without ``view=``).
        target_accuracy: the validation accuracy both pipelines train to (0..1).
        settings: the training and inference settings (JSON-ready).
        method: the measurement method (JSON-ready, see :class:`StudyMethod`).
        keypoints: pipeline A.
        frames: pipeline B.
        extraction: the measured keypoint extraction, or None when not measured.
        extraction_note: what the figures include of the extraction (said plainly).
        notes: what to keep in mind reading the figures.
        stored: whether the study and its runs are in a store.
    """

    study_id: str
    name: str
    dataset: str
    target_accuracy: float
    settings: dict[str, Any]
    method: dict[str, Any]
    keypoints: PipelineResult
    frames: PipelineResult
    extraction: Extraction | None
    extraction_note: str
    notes: tuple[str, ...] = ()
    stored: bool = False

    kind: ClassVar[str] = "keypoints"
    schema_version: ClassVar[int] = RESULTS_SCHEMA_VERSION
    derived: ClassVar[tuple[str, ...]] = (
        "equal_accuracy",
        "training_ratio",
        "inference_ratio",
        "inference_ratio_with_extraction",
    )

    @property
    def equal_accuracy(self) -> bool:
        """Whether every training run of both pipelines reached the target."""
        return all(p.reached_target == len(p.runs.trials) for p in (self.keypoints, self.frames))

    @property
    def training_ratio(self) -> float | None:
        """Median training energy of the frame pipeline over the keypoint pipeline's."""
        return _ratio(self.frames.runs.energy_j.median, self.keypoints.runs.energy_j.median)

    @property
    def inference_ratio(self) -> float | None:
        """Median inference energy per clip, frames over keypoints, without extraction."""
        return _ratio(self.frames.energy_per_clip_j.median, self.keypoints.energy_per_clip_j.median)

    @property
    def inference_ratio_with_extraction(self) -> float | None:
        """The same with the extraction per clip added to the keypoint pipeline (None:
        extraction not measured)."""
        if self.extraction is None:
            return None
        return _ratio(
            self.frames.energy_per_clip_j.median,
            self.keypoints.energy_per_clip_j.median + self.extraction.energy_per_clip_j,
        )

    def charts(self) -> tuple[ChartData, ...]:
        """Training energy per pipeline, and inference energy per clip (with the
        extraction as its own bar when measured)."""
        kp, fr = self.keypoints, self.frames
        labels = [f"keypoints ({kp.model})", f"frames ({fr.model})"]
        values = [kp.energy_per_clip_j.median, fr.energy_per_clip_j.median]
        if self.extraction is not None:
            labels.insert(1, "keypoints + extraction")
            values.insert(1, kp.energy_per_clip_j.median + self.extraction.energy_per_clip_j)
        return (
            BarData(
                (labels[0], labels[-1]),
                (kp.runs.energy_j.median, fr.runs.energy_j.median),
                "training energy (J)",
                f"Median training energy to the target accuracy {self.target_accuracy:g} "
                f"per pipeline ({kp.runs.energy_source}).",
            ),
            BarData(
                tuple(labels),
                tuple(values),
                "inference energy per clip (J)",
                "Median inference energy per clip per pipeline; " + self.extraction_note + ".",
            ),
        )
