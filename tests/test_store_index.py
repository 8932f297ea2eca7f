"""The store's reads of a run's samples go through the (run_id, t_start_s) index (SQLite).

The statements a real :class:`RunStore` call sends are caught with SQLAlchemy's
``before_cursor_execute`` event and explained (``EXPLAIN QUERY PLAN``) on the same file:
the replay of a journal reads only the batch's span of the run, by the index, not the run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from wattwise._records import Sample, Scope
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import RunStore
from wattwise.store._schema import SAMPLES_INDEX

RUN = "r" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(str(tmp_path / "runs.sqlite")) as opened:
        source = Source(Method.MEASURED, "test")
        opened.begin_run(
            run_id=RUN,
            name="indexed",
            scope=Scope.MACHINE,
            started_at=datetime.now(UTC),
            host="elsewhere",
            pid=1,
            command=None,
            components=[Component("cpu", ComponentKind.CPU, source)],
            baseline_power_w=None,
        )
        opened.append(
            RUN,
            samples=[Sample("cpu", float(t), t + 1.0, 1.0) for t in range(100)],
            gaps=(),
            heartbeat_at=datetime.now(UTC),
        )
        yield opened


def _plans(path: Path, statements: Sequence[tuple[str, Any]]) -> list[str]:
    """The query plan of each statement that reads wattwise_samples, one line each."""
    db = sqlite3.connect(path)
    try:
        return [
            " | ".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in statements
            if "FROM wattwise_samples" in sql and sql.lstrip().upper().startswith("SELECT")
        ]
    finally:
        db.close()


def _sent(work: Any) -> list[tuple[str, Any]]:
    """The SQL statements (with their parameters) sent while ``work()`` runs."""
    sent: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if not many:
            sent.append((sql, params))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", catch)
    try:
        work()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", catch)
    return sent


def test_the_replay_reads_only_the_batch_span_by_the_index(store: RunStore, tmp_path: Path) -> None:
    batch = [Sample("cpu", float(t), t + 1.0, 1.0) for t in range(90, 110)]
    sent = _sent(lambda: store.missing_samples(RUN, batch))
    assert len(store.missing_samples(RUN, batch)) == 10  # 100..109 are not stored
    (plan,) = _plans(tmp_path / "runs.sqlite", sent)
    assert f"USING INDEX {SAMPLES_INDEX} (run_id=? AND t_start_s>? AND t_start_s<?)" in plan


def test_reading_a_run_and_its_samples_searches_the_index(store: RunStore, tmp_path: Path) -> None:
    sent = _sent(lambda: store.get_run(RUN, with_samples=True))
    sent += _sent(lambda: store.samples(RUN))
    sent += _sent(lambda: store.get_run(RUN, timeline_points=10))
    plans = _plans(tmp_path / "runs.sqlite", sent)
    assert len(plans) >= 4
    # Every read of the samples searches the index by the run (the stretches of the
    # downsampled timeline read a range of ids from the table on purpose).
    by_key_range = [p for p in plans if "INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in p]
    assert len(by_key_range) == 10
    for plan in plans:
        if plan not in by_key_range:
            assert f"INDEX {SAMPLES_INDEX} (run_id=?)" in plan, plan
    assert all("SCAN wattwise_samples" not in p for p in plans)
