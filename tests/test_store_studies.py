"""Studies in the store: groups of runs with parameters and results, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.test_store import record_run

from wattwise._errors import ConfigError, RunNotFound, StoreError
from wattwise.store import RunStore


@pytest.fixture
def store(store_url: str) -> Iterator[RunStore]:
    with RunStore.open(store_url) as st:
        yield st


def test_study_round_trips_with_its_runs(store: RunStore) -> None:
    record_run(store, "a" * 32)
    record_run(store, "b" * 32)
    store.create_study(
        study_id="s" * 32,
        kind="architectures",
        name="digits",
        params={"models": ["mlp", "cnn"], "repeats": 2},
    )
    store.add_study_run("s" * 32, "a" * 32, label="mlp", attributes={"val_accuracy": 0.9})
    store.add_study_run("s" * 32, "b" * 32, label="cnn", attributes={"val_accuracy": 0.97})
    store.add_study_run("s" * 32, "a" * 32, label="mlp#1", attributes={"val_accuracy": 0.91})
    store.finish_study("s" * 32, {"pareto": ["mlp", "cnn"]})
    study = store.get_study("ssss")
    assert study.kind == "architectures" and study.name == "digits"
    assert study.params == {"models": ["mlp", "cnn"], "repeats": 2}
    assert study.results == {"pareto": ["mlp", "cnn"]}
    assert study.finished_at is not None
    # Re-adding a run replaces its link rather than duplicating it.
    assert [(r.run_id[0], r.label) for r in study.runs] == [("b", "cnn"), ("a", "mlp#1")]
    assert study.runs[1].attributes == {"val_accuracy": 0.91}
    assert [s.study_id for s in store.list_studies(kind="architectures")] == ["s" * 32]
    assert store.list_studies(kind="sweep") == []


def test_study_errors(store: RunStore) -> None:
    store.create_study(study_id="sweep-1", kind="sweep", name="x", params={})
    with pytest.raises(StoreError, match="exists already"):
        store.create_study(study_id="sweep-1", kind="sweep", name="x", params={})
    store.create_study(study_id="sweep-1", kind="sweep", name="x", params={}, exist_ok=True)
    with pytest.raises(RunNotFound):
        store.add_study_run("sweep-1", "f" * 32, label="t0", attributes={})
    with pytest.raises(StoreError, match="no study"):
        store.add_study_run("nope", "f" * 32, label="t0", attributes={})
    with pytest.raises(StoreError, match="no study"):
        store.get_study("zzzz")
    store.create_study(study_id="sweep-2", kind="sweep", name="y", params={})
    with pytest.raises(ConfigError, match="ambiguous"):
        store.get_study("sweep")
