"""What every part of :class:`~wattwise.store.RunStore` stands on: the URL, the connection,
the schema check at the first use, and run ids (a unique prefix of at least
:data:`MIN_PREFIX_LEN` characters).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Self, TypeVar

import platformdirs
import sqlalchemy as sa

from wattwise._errors import ConfigError, RunNotFound
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store._backend import ENV_VAR, Database, mask_url
from wattwise.store._opening import ensure_schema

__all__ = [
    "AMBIGUOUS_SHOWN",
    "MIN_PREFIX_LEN",
    "StoreBase",
    "aware",
    "default_store_path",
    "now_utc",
]

_T = TypeVar("_T")

#: The shortest run id prefix accepted by :meth:`RunStore.get_run`.
MIN_PREFIX_LEN: Final = 4

#: How many candidates an ambiguous id prefix lists.
AMBIGUOUS_SHOWN: Final = 10


def default_store_path() -> Path:
    """The SQLite file used when no store is named: ``<user data dir>/wattwise/runs.sqlite``."""
    return Path(platformdirs.user_data_dir("wattwise")) / "runs.sqlite"


class StoreBase:
    """The connection and run ids of a :class:`~wattwise.store.RunStore` (its docstring
    says what the arguments are); the store's methods are in its other bases."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self._url = url
        self._read_only = read_only
        self._db: Database | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None = None, *, read_only: bool = False) -> Self:
        """Resolve, connect to and check a store.

        Args:
            url: the store; None: ``$WATTWISE_STORE``, else :func:`default_store_path`
                (its directory is created unless ``read_only``).
            read_only: open an existing store to read it, creating and writing nothing: a
                SQLite file through ``mode=ro`` (``immutable=1`` when no process has it
                open), PostgreSQL in read-only transactions.

        Raises:
            StoreNotFound: ``read_only`` and there is no store there (no file, or no
                wattwise tables): nothing was recorded yet.
            StoreUnreachable: the store cannot be created, opened or connected to.
            StoreVersionError: the store holds another schema version.
            ConfigError: the URL is malformed or names an unsupported database.
        """
        if url is None:
            url = os.environ.get(ENV_VAR) or str(default_store_path())
        store = cls(url, read_only=read_only)
        store._database()
        return store

    @property
    def read_only(self) -> bool:
        """Whether this store was opened only to be read."""
        return self._read_only

    @property
    def display_url(self) -> str:
        """The store's path or URL as given, with any password masked."""
        return mask_url(self._url)

    def __repr__(self) -> str:
        return f"RunStore({self.display_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every connection. A later call connects again."""
        with self._lock:
            if self._db is not None:
                self._db.dispose()
                self._db = None

    # -- connection and schema -------------------------------------------------------------

    def _database(self) -> Database:
        with self._lock:
            if self._db is None:
                db = Database(self._url, read_only=self._read_only)
                try:
                    ensure_schema(db)
                except BaseException:
                    db.dispose()
                    raise
                self._db = db
            return self._db

    def _run(self, work: Callable[[sa.Connection], _T], *, write: bool) -> _T:
        return self._database().run(work, write=write)

    # -- ids ---------------------------------------------------------------------------------

    def _not_found(self, run_id: str) -> RunNotFound:
        return RunNotFound(f"no run with id {run_id!r} in the store {self.display_url}")

    def _require_run(self, conn: sa.Connection, run_id: str) -> None:
        if not rows.run_exists(conn, run_id):
            raise self._not_found(run_id)

    def _resolve_id(self, conn: sa.Connection, run_id: str) -> str:
        if rows.run_exists(conn, run_id):
            return run_id
        if len(run_id) < MIN_PREFIX_LEN:
            raise ConfigError(
                f"run id {run_id!r} is too short: give at least {MIN_PREFIX_LEN} characters"
            )
        found = list(
            conn.execute(
                sa.select(s.runs.c.run_id, s.runs.c.name, s.runs.c.started_at)
                .where(s.runs.c.run_id.startswith(run_id, autoescape=True))
                .order_by(s.runs.c.started_at.desc())
                .limit(AMBIGUOUS_SHOWN + 1)
            )
        )
        if not found:
            raise self._not_found(run_id)
        if len(found) == 1:
            return str(found[0].run_id)
        listed = ", ".join(
            f"{r.run_id} ({r.name}, {r.started_at:%Y-%m-%d %H:%M:%S} UTC)"
            for r in found[:AMBIGUOUS_SHOWN]
        )
        more = " and more" if len(found) > AMBIGUOUS_SHOWN else ""
        raise ConfigError(
            f"run id prefix {run_id!r} is ambiguous, it matches {listed}{more}: "
            f"give more characters"
        )


def now_utc() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime, what: str) -> datetime:
    """``value``, refused (ConfigError) when it has no time zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(f"{what} must be a timezone-aware datetime (UTC), got {value!r}")
    return value
