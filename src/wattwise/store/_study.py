"""Records of studies: groups of runs made to compare something."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["StudyRecord", "StudyRun"]


@dataclass(frozen=True)
class StudyRun:
    """A run's place in a study.

    Attributes:
        run_id: the run.
        label: what the run is in the study (``model=cnn repeat=2``, ``trial 7``).
        attributes: JSON-ready details (parameters, accuracy, trial state...).
    """

    run_id: str
    label: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyRecord:
    """A stored study.

    Attributes:
        study_id: unique id (32 hex digits, or a name a sweep chose).
        kind: ``architectures``, ``layers``, ``environments``, ``sweep``, ``batching``...
        name: the user's name for it.
        created_at: UTC creation time.
        finished_at: UTC time its results were written, or None.
        params: JSON-ready settings the study ran with.
        results: JSON-ready results (tables, fronts, recommendations), or None.
        runs: its runs, in the order they were added.
    """

    study_id: str
    kind: str
    name: str
    created_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    results: dict[str, Any] | None
    runs: tuple[StudyRun, ...] = ()
