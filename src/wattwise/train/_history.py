"""A training run's epochs in the run store, beside its energy: accuracy, loss, the stop.

The tracker stores each epoch's energy (the windows ``epoch-N``); what the energy bought
(validation accuracy and loss, the stopping rules and why the run ended) is stored as a
study of kind ``training`` whose id is :func:`history_id` of the run and whose one run is
the training run. It is rewritten after every epoch, so a run cut short (Ctrl-C, a crash)
keeps the epochs it completed. ``wattwise report RUN_ID`` shows it.

Results (JSON): ``status`` (``running``, ``completed``, ``stopped early``, ``interrupted``),
``planned_epochs``, ``stop_rules`` (the rules asked), ``stop_rule`` and ``stop_reason``,
``epochs`` (each :meth:`EpochRecord.to_dict`), and, once the fit ended, every field of
``wattwise train --json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from wattwise._errors import WattwiseError
from wattwise.store import RunStore
from wattwise.tracking._tracker import Tracker
from wattwise.train._records import EpochRecord, FitResult, StopDecision
from wattwise.train._stopping import StopRule

__all__ = ["HISTORY_KIND", "TrainingHistory", "history_id"]

log = logging.getLogger("wattwise")

#: The study kind of a training run's history.
HISTORY_KIND = "training"


def history_id(run_id: str) -> str:
    """The id of the history study of the training run ``run_id``."""
    return f"train-{run_id}"


class TrainingHistory:
    """Writes one fit's epochs to the store its tracker writes to (nothing when it stores
    nothing, or writes to a sink that is not a :class:`~wattwise.store.RunStore`).

    A store that fails is reported once as a warning and then left alone: the history
    never stops a training run.
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        name: str,
        params: dict[str, Any],
        planned_epochs: int,
        stop: Sequence[StopRule],
    ) -> None:
        self._store: RunStore | None = None
        self._own = False
        self._id = history_id(tracker.run_id)
        self._base: dict[str, Any] = {
            "planned_epochs": planned_epochs,
            "stop_rules": [repr(rule) for rule in stop],
        }
        store = tracker.store
        try:
            if isinstance(store, RunStore):
                self._store = store
            elif store is None or store is True or isinstance(store, str):
                self._store = RunStore.open(store if isinstance(store, str) else None)
                self._own = True
            if self._store is not None:
                self._store.create_study(
                    study_id=self._id,
                    kind=HISTORY_KIND,
                    name=name,
                    params={**params, **self._base},
                )
                self._store.add_study_run(self._id, tracker.run_id, label=name, attributes={})
        except WattwiseError as exc:
            self._give_up(exc)

    def _give_up(self, exc: WattwiseError) -> None:
        log.warning("the training history could not be stored: %s", exc)
        self.close()

    def _write(self, results: dict[str, Any]) -> None:
        if self._store is None:
            return
        try:
            self._store.finish_study(self._id, {**self._base, **results})
        except WattwiseError as exc:
            self._give_up(exc)

    def epoch(self, history: Sequence[EpochRecord]) -> None:
        """Record the epochs completed so far (the run goes on)."""
        self._write(
            {
                "status": "running",
                "stop_rule": None,
                "stop_reason": None,
                "epochs": [e.to_dict() for e in history],
            }
        )

    def finish(self, result: FitResult) -> None:
        """Record how the fit ended, and close."""
        if result.interrupted:
            status = "interrupted"
        elif result.stop is not None:
            status = "stopped early"
        else:
            status = "completed"
        self._write({**result.to_dict(), "status": status})
        self.close()

    def end(
        self, history: Sequence[EpochRecord], stop: StopDecision | None, *, failed: bool = False
    ) -> None:
        """Record how a loop that is not :func:`~wattwise.train.fit` ended, and close."""
        status = "failed" if failed else "stopped early" if stop is not None else "completed"
        self._write(
            {
                "status": status,
                "stop_rule": stop.rule if stop else None,
                "stop_reason": stop.reason if stop else None,
                "epochs": [e.to_dict() for e in history],
            }
        )
        self.close()

    def close(self) -> None:
        """Release the store when this history opened it."""
        if self._own and self._store is not None:
            self._store.close()
        self._store = None
