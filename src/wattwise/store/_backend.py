"""The database behind a store: URL handling, engines, transactions, and vendor errors.

This is the only module that knows SQLite from PostgreSQL, and :meth:`Database.translate`
the one place where SQLAlchemy and driver errors become :class:`~wattwise.StoreError` and its
subclasses, each with a one-line message.

SQLite is set up so that several processes may write one file at once: WAL journal (readers
never block the writer), a busy timeout, write transactions that take the lock at
``BEGIN IMMEDIATE``, and, when SQLite still answers "database is locked", the whole
transaction retried with jittered exponential backoff.

A store opened read-only (``read_only=True``: listing, showing, exporting, reporting) is never
created and never written. A missing SQLite file raises :class:`~wattwise.StoreNotFound` (no
directory is made), and an existing one is opened through a ``file:`` URI with ``mode=ro``.
In WAL mode SQLite needs the ``-wal`` and ``-shm`` files beside the database even to read it,
and a read-only connection would create them (and leave them behind). So when no ``-wal``
exists (no process has the store open: the last connection to close removes it, after
copying everything into the main file) the file is opened ``immutable=1``: no lock, no side
file, nothing written, which also reads a store on a read-only file system. When a ``-wal``
exists (a run is being recorded right now), ``mode=ro`` reads it, so the runs in progress
show; only if its ``-shm`` index is missing and the directory is not writable is the WAL
skipped (``immutable=1``, with a note), showing what was last checkpointed. PostgreSQL
connections of a read-only store set ``default_transaction_read_only``, and its tables are
never created.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import StaticPool

from wattwise._errors import ConfigError, StoreError, StoreNotFound, StoreUnreachable

__all__ = ["ENV_VAR", "SQLITE_SUFFIXES", "Database", "mask_url"]

log = logging.getLogger("wattwise")

_T = TypeVar("_T")

#: Environment variable naming the store (a path or a URL).
ENV_VAR: Final = "WATTWISE_STORE"

# SQLite: how long one statement waits for a lock inside SQLite (s), and how long the whole
# transaction is retried with backoff after SQLite still answers "database is locked" (s).
_SQLITE_BUSY_TIMEOUT_S: Final = 10.0
_SQLITE_LOCK_GIVE_UP_S: Final = 120.0
_BACKOFF_FIRST_S: Final = 0.01
_BACKOFF_MAX_S: Final = 0.5

# The execution option carrying the BEGIN flavour to _on_sqlite_begin.
_SQLITE_BEGIN_OPTION: Final = "wattwise_sqlite_begin"

#: The endings a plain path needs to be taken for a new SQLite file (an existing file is
#: taken whatever its name): anything else is more likely a mistyped URL than a file name.
SQLITE_SUFFIXES: Final = (".sqlite", ".sqlite3", ".db", ".db3")

_HINT: Final = (
    "path ending in .sqlite or .db, sqlite:///PATH, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB"
)

# The SQLite file header: its first 16 bytes, and the bytes 18-19 that say WAL (2, 2).
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_SQLITE_WAL_VERSIONS: Final = b"\x02\x02"

# PostgreSQL: every transaction of a read-only store's connections is read-only.
_PG_READ_ONLY_OPTIONS: Final = "-c default_transaction_read_only=on"


def mask_url(text: str) -> str:
    """A path as given, or a URL with its password (also one in the query) shown as ``***``."""
    if not _looks_like_url(text):
        return text
    try:
        url = sa.make_url(text)
    except sa_exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
    query = {k: ("***" if "password" in k.lower() else v) for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)


class Database:
    """One store's engine, created on first use, and its transactions.

    Args:
        url_text: a SQLAlchemy URL or a plain path to a SQLite file.
        read_only: never create the store nor write to it (see the module docstring).
    """

    def __init__(self, url_text: str, *, read_only: bool = False) -> None:
        self.display_url = mask_url(url_text)
        self.read_only = read_only
        self._url_text = url_text
        self._engine: sa.Engine | None = None
        self._engine_pid: int | None = None
        self._lock = threading.Lock()
        self.is_sqlite = False

    def engine(self) -> sa.Engine:
        """The engine, created on the first call (and again after a fork)."""
        with self._lock:
            # An engine inherited across fork() shares sockets with the parent: start afresh.
            if self._engine is not None and self._engine_pid != os.getpid():
                self._engine.dispose(close=False)
                self._engine = None
            if self._engine is None:
                self._engine = self._create_engine()
                self._engine_pid = os.getpid()
            return self._engine

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def run(self, work: Callable[[sa.Connection], _T], *, write: bool) -> _T:
        """Run ``work`` in one transaction, retrying it while SQLite says it is locked.

        Args:
            work: gets the connection; may run several statements; must not commit.
            write: whether ``work`` writes (SQLite then locks at BEGIN).

        Raises:
            StoreError: the database failed (see :meth:`translate`), or ``write`` on a store
                opened read-only; errors ``work`` raises on purpose pass through.
        """
        if write and self.read_only:
            raise StoreError(f"the run store {self.display_url} was opened read-only")
        engine = self.engine()
        deadline = time.monotonic() + _SQLITE_LOCK_GIVE_UP_S
        delay = _BACKOFF_FIRST_S
        while True:
            try:
                with engine.connect() as conn:
                    if write and self.is_sqlite:
                        # A deferred transaction that reads and then writes fails at once
                        # under WAL when another process committed in between, whatever the
                        # busy timeout: take the write lock at BEGIN instead.
                        conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
                    with conn.begin():
                        return work(conn)
            except sa_exc.SQLAlchemyError as exc:
                if _is_locked(exc) and time.monotonic() < deadline:
                    time.sleep(delay * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, _BACKOFF_MAX_S)
                    continue
                raise self.translate(exc) from exc

    def translate(self, exc: sa_exc.SQLAlchemyError) -> StoreError:
        """The one place where SQLAlchemy and driver errors become wattwise errors."""
        orig = getattr(exc, "orig", None)
        reason = _one_line(str(orig) if orig is not None else str(exc))
        if _is_locked(exc):
            return StoreError(
                f"the run store {self.display_url} stayed locked by another process for "
                f"{_SQLITE_LOCK_GIVE_UP_S:g} s: {reason}"
            )
        if isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
        ):
            return StoreUnreachable(f"cannot use the run store {self.display_url}: {reason}")
        return StoreError(f"the run store {self.display_url} failed: {reason}")

    # -- engines ---------------------------------------------------------------------------

    def _create_engine(self) -> sa.Engine:
        url = self._sqlalchemy_url()
        self.is_sqlite = url.get_backend_name() == "sqlite"
        try:
            if self.is_sqlite:
                return self._create_sqlite_engine(url)
            connect_args = {"options": _PG_READ_ONLY_OPTIONS} if self.read_only else {}
            # pre_ping: a run's connection may sit idle long enough for a server to drop it.
            return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        except ImportError as exc:
            if url.get_backend_name() == "postgresql":
                raise StoreUnreachable(
                    f"cannot use the run store {self.display_url}: the PostgreSQL driver "
                    f"psycopg is not installed: pip install 'wattwise[postgres]'"
                ) from exc
            raise StoreUnreachable(
                f"cannot use the run store {self.display_url}: driver missing ({exc})"
            ) from exc
        except sa_exc.ArgumentError as exc:
            raise ConfigError(f"bad run store URL {self.display_url}: use a {_HINT}") from exc

    def _sqlalchemy_url(self) -> sa.URL:
        text = self._url_text
        if not text.strip():
            raise ConfigError(f"the run store path is empty: give a {_HINT}")
        if not _looks_like_url(text):
            return sa.URL.create("sqlite", database=self._plain_path(text))
        try:
            url = sa.make_url(text)
        except sa_exc.ArgumentError as exc:
            raise ConfigError(f"bad run store URL {self.display_url}: use a {_HINT}") from exc
        backend = url.get_backend_name()
        if backend in ("postgresql", "postgres"):
            driver = url.get_driver_name() if "+" in url.drivername else "psycopg"
            return url.set(drivername=f"postgresql+{driver}")
        if backend == "sqlite":
            return url
        raise ConfigError(f"unsupported run store {self.display_url}: use a {_HINT}")

    def _plain_path(self, text: str) -> str:
        """A plain path as a SQLite database, refusing what looks like a mistyped URL."""
        if text == ":memory:":
            return text
        path = Path(text).expanduser()
        if path.is_file():
            return str(path)
        scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", text)  # one letter: a Windows drive
        if scheme is not None or path.suffix.lower() not in SQLITE_SUFFIXES:
            raise ConfigError(f"bad run store {self.display_url!r}: give a {_HINT}")
        return str(path)

    def _create_sqlite_engine(self, url: sa.URL) -> sa.Engine:
        database = url.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        if self.read_only and not in_memory:
            url = self._read_only_sqlite_url(url, database)
        elif not in_memory and not database.startswith("file:"):
            path = Path(database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnreachable(
                    f"cannot create the run store {self.display_url}: "
                    f"{exc.strerror or exc} ({path.parent}); point {ENV_VAR} elsewhere"
                ) from exc
            url = url.set(database=str(path))
        engine = sa.create_engine(
            url,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            # An in-memory database lives inside one connection: share that one.
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        on_connect = _on_sqlite_connect_read_only if self.read_only else _on_sqlite_connect
        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine

    def _read_only_sqlite_url(self, url: sa.URL, database: str) -> sa.URL:
        """A ``file:`` URI opening the SQLite store read-only (see the module docstring)."""
        if database.startswith("file:"):  # the user's own URI: only make it read-only
            return url.update_query_dict({"mode": "ro", "uri": "true"})
        path = Path(database).expanduser()
        if not path.is_file():
            raise StoreNotFound(
                f"no run store at {self.display_url}: nothing recorded yet "
                f"(`wattwise run -- CMD` and the other measuring commands record runs there)"
            )
        query = {"mode": "ro", "uri": "true"}
        wal = path.with_name(path.name + "-wal")
        shm = path.with_name(path.name + "-shm")
        if _sqlite_uses_wal(path):
            if not wal.exists():
                query["immutable"] = "1"
            elif not shm.exists() and not os.access(path.parent, os.W_OK):
                log.warning(
                    "%s cannot be read without its -shm index on a read-only directory: "
                    "showing what the store held at its last checkpoint",
                    wal,
                )
                query["immutable"] = "1"
        uri = "file:" + urllib.parse.quote(str(path.absolute()), safe="/")
        return sa.URL.create("sqlite+pysqlite", database=uri, query=query)


def _on_sqlite_connect(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _on_sqlite_begin): the sqlite3 module's own
    # transaction handling does not BEGIN before SELECTs and cannot BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, and fast
    finally:
        cursor.close()


def _on_sqlite_connect_read_only(dbapi_conn: Any, record: Any) -> None:
    # As _on_sqlite_connect, without setting the journal mode (that writes the file header).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _sqlite_uses_wal(path: Path) -> bool:
    """Whether the SQLite file's header says WAL mode (False for a file that is not SQLite)."""
    try:
        with path.open("rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return header.startswith(_SQLITE_MAGIC) and header[18:20] == _SQLITE_WAL_VERSIONS


def _on_sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _is_locked(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if not isinstance(orig, sqlite3.OperationalError):
        return False
    message = str(orig).lower()
    return "locked" in message or "busy" in message


def _looks_like_url(text: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def _one_line(text: str) -> str:
    return " ".join(text.split())
