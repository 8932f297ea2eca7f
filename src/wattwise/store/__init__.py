"""The run store: runs, windows, gaps and power timelines in SQLite or PostgreSQL."""

from wattwise.store._backend import ENV_VAR
from wattwise.store._liveness import STALE_AFTER_S
from wattwise.store._schema import SCHEMA_VERSION
from wattwise.store._store import MIN_PREFIX_LEN, RunStore, default_store_path

__all__ = [
    "ENV_VAR",
    "MIN_PREFIX_LEN",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "RunStore",
    "default_store_path",
]
