"""Results of the inference commands as studies in the run store, for later reports.

One study per command run: kind ``batching``, ``quantization`` or ``zoo``; its one run is
the tracker run whose windows hold every policy, variant or model; its results are the
command's JSON (``BatchingResult.to_dict()`` etc., shapes in docs/infer.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from wattwise.store import RunStore
from wattwise.tracking._tracker import Tracker

__all__ = ["STUDY_KINDS", "record_study"]

#: Study kinds the inference commands write.
STUDY_KINDS = ("batching", "quantization", "zoo")


def record_study(
    tracker: Tracker,
    *,
    kind: str,
    name: str,
    params: dict[str, Any],
    results: dict[str, Any],
    label: str,
) -> str | None:
    """Store a finished tracker run as a study's only run, with the results.

    The study goes to the store the tracker wrote its run to; a tracker that stores
    nothing (``store=False``) or writes to another kind of sink gets no study.

    Returns:
        The study id, or None when nothing was stored.

    Raises:
        StoreError: the store refused (a run that is not in it, an unreachable store).
    """
    store = tracker.store
    if store is False or not (store is None or store is True or isinstance(store, str | RunStore)):
        return None
    owned = not isinstance(store, RunStore)
    rs = (
        store
        if isinstance(store, RunStore)
        else RunStore.open(store if isinstance(store, str) else None)
    )
    try:
        study_id = uuid.uuid4().hex
        rs.create_study(study_id=study_id, kind=kind, name=name, params=params)
        rs.add_study_run(study_id, tracker.run_id, label=label, attributes={})
        rs.finish_study(study_id, results)
        return study_id
    finally:
        if owned:
            rs.close()
