"""Measured sub-networks kept in the store, so a selection never measures one twice.

A candidate's figures depend on the network's weights (its fingerprint), the sub-network,
the inputs (dataset, batch size), and how it was measured (meters, scope, device, host,
protocol). Those together name one *cache study* (kind ``ofa-measurements``, its id a hash
of them) in the existing study tables: its results hold every candidate measured so far,
its runs are the tracker runs that measured them. No table of its own: it is written
through :func:`~wattwise.protocol.study_session` like every lever's study, and read back
through the session's store.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from wattwise._errors import ConfigError, StoreError, StoreUnreachable
from wattwise._records import RecordError
from wattwise.ofa._records import Candidate
from wattwise.protocol import LeverContext, StudySession, study_session

__all__ = ["CACHE_KIND", "cache_study_id", "read_cache", "write_cache"]

#: The study kind that holds measured candidates.
CACHE_KIND = "ofa-measurements"


def cache_study_id(key: dict[str, Any]) -> str:
    """The id of the cache study for these measurement conditions."""
    text = json.dumps(key, sort_keys=True, default=str)
    return "ofa-measurements-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def read_cache(session: StudySession, study_id: str) -> dict[str, Candidate]:
    """The candidates measured before under the same conditions, by key (empty when none
    or nothing is stored; entries an older wattwise wrote in another shape are skipped)."""
    store = session.store
    if store is None:
        return {}
    try:
        study = store.get_study(study_id)
    except StoreUnreachable:
        raise
    except (StoreError, ConfigError):  # not stored yet
        return {}
    if study.study_id != study_id or not study.results:
        return {}
    found: dict[str, Candidate] = {}
    for item in study.results.get("candidates", []):
        try:
            candidate = Candidate.from_dict(item)
        except RecordError:
            continue
        found[candidate.key] = candidate
    return found


def write_cache(
    context: LeverContext,
    study_id: str,
    *,
    name: str,
    key: dict[str, Any],
    candidates: list[Candidate],
    run_id: str | None,
) -> None:
    """Add ``candidates`` (measured now, in run ``run_id``) to the cache study."""
    with study_session(
        context, kind=CACHE_KIND, name=name, params=key, study_id=study_id, exist_ok=True
    ) as session:
        known = read_cache(session, study_id)
        for c in candidates:
            known[c.key] = c
        session.finish({"candidates": [c.to_dict() for c in known.values()]})
        if run_id is not None:
            session.link(run_id, "measurements")
