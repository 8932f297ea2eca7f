"""The run store: runs, windows, gaps and power timelines in SQLite or PostgreSQL."""

from wattwise.store._backend import ENV_VAR
from wattwise.store._liveness import STALE_AFTER_S
from wattwise.store._replay import RunProcess
from wattwise.store._schema import SCHEMA_VERSION
from wattwise.store._store import MIN_PREFIX_LEN, RunStore, default_store_path
from wattwise.store._study import StudyRecord, StudyRun

__all__ = [
    "ENV_VAR",
    "MIN_PREFIX_LEN",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "RunProcess",
    "RunStore",
    "StudyRecord",
    "StudyRun",
    "default_store_path",
]
