"""Report sections for a training run: what each epoch's energy bought, and why it stopped.

The history is the ``training`` study that :func:`wattwise.train.fit` stores beside the run
(``wattwise.train._history``): accuracy and loss per epoch, the stopping rules asked, and
the reason the run ended.
"""

from __future__ import annotations

from typing import Any

from wattwise._errors import StoreError
from wattwise._units import format_energy as fmt_j
from wattwise.report import _plots
from wattwise.report._document import Figure, Section, Table
from wattwise.store import RunStore, StudyRecord

__all__ = ["find_training_history", "training_sections"]

#: The history's study id is this prefix and the run id (``wattwise.train._history``).
_HISTORY_PREFIX = "train-"


def find_training_history(store: RunStore, run_id: str) -> StudyRecord | None:
    """The stored training history of the run ``run_id`` (full id), or None."""
    try:
        found = store.get_study(_HISTORY_PREFIX + run_id)
    except StoreError:
        return None
    return found if found.kind == "training" else None


def _num(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def training_sections(history: StudyRecord) -> tuple[Section, ...]:
    """Accuracy, loss and energy per epoch, the stop rules and the stop reason."""
    results = history.results or {}
    params = history.params
    epochs: list[dict[str, Any]] = list(results.get("epochs") or [])
    planned = results.get("planned_epochs", params.get("epochs"))
    rules = results.get("stop_rules", params.get("stop_rules")) or []
    status = results.get("status", "running")
    reason = results.get("stop_reason") or (
        "the run did not record how it ended (it may still be running, or was killed)"
    )
    what = f"{params.get('model', 'a model')} on {params.get('dataset', 'its data')}"
    paragraphs = [
        f"Training {what}: {len(epochs)} of {planned} planned epochs recorded "
        f"(status {status}). Stop rules: {', '.join(rules) if rules else 'none'}. "
        f"Ended: {reason}.",
    ]
    if epochs:
        best = max(epochs, key=lambda e: float(e.get("val_accuracy", 0.0)))
        paragraphs.append(
            f"Validation accuracy {_num(epochs[-1].get('val_accuracy'))} after the last "
            f"epoch, best {_num(best.get('val_accuracy'))} at epoch {best.get('epoch')}. "
            f"Energy per epoch {epochs[0].get('source', '')}."
        )
    if status == "interrupted":
        paragraphs.append(
            "The run was interrupted: the table lists the epochs it completed; the run's "
            "total energy also counts the epoch cut short."
        )
    rows = tuple(
        (
            str(e.get("epoch", "")),
            _num(e.get("val_accuracy")),
            _num(e.get("val_loss")),
            _num(e.get("train_loss")),
            fmt_j(e.get("energy_j")),
            f"{float(e.get('duration_s', 0.0)):.2f} s",
        )
        for e in epochs
    )
    tables = (
        (
            Table(
                ("epoch", "val accuracy", "val loss", "train loss", "energy", "time"),
                rows,
                "Accuracy and loss on the validation set after each epoch; energy of the "
                "epoch (training and validation).",
            ),
        )
        if rows
        else ()
    )
    figures: tuple[Figure, ...] = ()
    if len(epochs) >= 2:
        xs = [float(e["epoch"]) for e in epochs]
        figures = (
            Figure(
                _plots.line_chart(
                    [("validation accuracy", xs, [float(e["val_accuracy"]) for e in epochs])],
                    xlabel="epoch",
                    ylabel="validation accuracy",
                    secondary=(
                        "energy per epoch",
                        xs,
                        [float(e["energy_j"]) for e in epochs],
                        "energy per epoch (J)",
                    ),
                ),
                "Validation accuracy and energy of each epoch.",
            ),
        )
    return (Section("Training", tuple(paragraphs), tables, figures),)
