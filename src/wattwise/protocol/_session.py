"""A study session: the one place a lever's study reaches the store (create the study, link
its runs, write its results), with progress counted as runs finish."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wattwise.protocol._context import LeverContext
from wattwise.store import RunStore
from wattwise.tracking._tracker import Tracker

__all__ = ["StudySession", "study_session"]


class StudySession:
    """One study being run. Open it with :func:`study_session`.

    Runs made with :meth:`tracker` go to the session's store; :meth:`link` attaches a
    stored run, :meth:`finish` writes the results. Where the context stores nothing (False,
    or a sink that is not a :class:`RunStore`), the session records nothing and says so in
    :attr:`stored`.

    Attributes:
        kind: the study's kind (``layers``, ``sweep-compare``, ``batching``...).
        study_id: its id in the store.
        context: the lever context, its store replaced by the one opened here.
        sources: the provenance of every run counted so far, first seen first.
    """

    def __init__(self, context: LeverContext, *, kind: str, study_id: str) -> None:
        self.kind = kind
        self.study_id = study_id
        self.context = context
        self.planned = 0
        self.done = 0
        self.sources: list[str] = []

    @property
    def store(self) -> RunStore | None:
        """The store the study is written to, or None."""
        store = self.context.store
        return store if isinstance(store, RunStore) else None

    @property
    def stored(self) -> bool:
        """Whether the study and its runs go to a store."""
        return self.store is not None

    def tracker(self, name: str) -> Tracker:
        """A fresh tracker for one run of the study, writing to the study's store."""
        return self.context.tracker(name)

    def link(self, run_id: str, label: str, attributes: dict[str, Any] | None = None) -> None:
        """Attach a stored run to the study."""
        if self.store is not None:
            self.store.add_study_run(
                self.study_id, run_id, label=label, attributes=attributes or {}
            )

    def finish(self, results: dict[str, Any]) -> None:
        """Write the study's results."""
        if self.store is not None:
            self.store.finish_study(self.study_id, results)

    def begin(self, planned: int) -> None:
        """Everything is checked: ``planned`` measured runs start now."""
        self.planned = planned
        if self.context.progress is not None:
            self.context.progress(0, planned, "warm-up")

    def run_done(self, label: str, source: str) -> None:
        """Count a finished run and report progress."""
        self.done += 1
        if source not in self.sources:
            self.sources.append(source)
        if self.context.progress is not None:
            self.context.progress(self.done, self.planned, label)


@contextmanager
def study_session(
    context: LeverContext,
    *,
    kind: str,
    name: str,
    params: dict[str, Any],
    study_id: str | None = None,
    exist_ok: bool = False,
) -> Iterator[StudySession]:
    """Open the context's store (a URL or the default one is opened here and closed at the
    end), record the study, and yield its session.

    Args:
        context: the lever context.
        kind: the study's kind.
        name: its name.
        params: its JSON-ready parameters.
        study_id: its id (default: a new one).
        exist_ok: a study with that id already stored is joined, not refused.

    Raises:
        StoreError: the store cannot be opened, or refused the study.
    """
    store = context.store
    owned: RunStore | None = None
    if store is None or isinstance(store, str):
        owned = RunStore.open(store)
        context = context.with_(store=owned)
    session = StudySession(context, kind=kind, study_id=study_id or uuid.uuid4().hex)
    try:
        if session.store is not None:
            session.store.create_study(
                study_id=session.study_id, kind=kind, name=name, params=params, exist_ok=exist_ok
            )
        yield session
    finally:
        if owned is not None:
            owned.close()
