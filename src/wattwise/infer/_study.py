"""Results of the inference commands as studies in the run store, for later reports.

One study per command run: kind ``batching``, ``batching-sweep``, ``quantization`` or
``zoo``; its one run is the tracker run whose windows hold every policy, variant or model;
its results are the command's JSON (``BatchingResult.to_dict()`` etc., shapes in docs/infer.md).
"""

from __future__ import annotations

from typing import Any

from wattwise.protocol import LeverContext, study_session

__all__ = ["STUDY_KINDS", "record_study"]

#: Study kinds the inference commands write.
STUDY_KINDS = ("batching", "batching-sweep", "quantization", "zoo")


def record_study(
    run_id: str,
    *,
    kind: str,
    name: str,
    params: dict[str, Any],
    results: dict[str, Any],
    label: str,
    context: LeverContext | None = None,
) -> str | None:
    """Store a finished run as a study's only run, with the results.

    The study goes to the context's store, the one the run was written to; a context that
    stores nothing (``store=False``) or writes to another kind of sink gets no study.

    Args:
        run_id: the finished run, already in the context's store.
        kind: the study's kind (one of :data:`STUDY_KINDS`).
        name: its name.
        params: its JSON-ready parameters.
        results: its JSON-ready results (the command's JSON).
        label: the run's label in the study.
        context: where the study goes (None: the default store).

    Returns:
        The study id, or None when nothing was stored.

    Raises:
        StoreError: the store refused (a run that is not in it, an unreachable store).
    """
    with study_session(context or LeverContext(), kind=kind, name=name, params=params) as s:
        if not s.stored:
            return None
        s.link(run_id, label)
        s.finish(results)
        return s.study_id
