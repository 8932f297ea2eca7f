"""Opening a store: create the tables in an empty one, check or upgrade a filled one's version.

A read-only open never writes: an empty store is :class:`~wattwise.StoreNotFound`, an older
one :class:`~wattwise.StoreNeedsUpgrade` (``wattwise runs upgrade``). Upgrades are
``_migrate.py``'s.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from wattwise._errors import (
    StoreError,
    StoreNeedsUpgrade,
    StoreNotFound,
    StoreUnreachable,
    StoreVersionError,
)
from wattwise.store import _rows as rows
from wattwise.store import _schema as s
from wattwise.store._backend import ENV_VAR, Database
from wattwise.store._migrate import can_upgrade, upgrade
from wattwise.store._schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY

__all__ = ["ensure_schema"]

# Serialises schema creation between PostgreSQL clients (an arbitrary 63-bit key).
_PG_SCHEMA_LOCK_KEY: Final = 0x7761_7474_7769_7365


def ensure_schema(db: Database) -> None:
    """Create the tables in an empty store (unless read-only), or check a filled one's version."""
    try:
        found = db.run(rows.read_version, write=False)
        if found is None and db.read_only:
            db.run(lambda conn: _refuse_foreign_tables(db, conn), write=False)
            raise StoreNotFound(
                f"no run store at {db.display_url} (it holds no wattwise tables): nothing "
                f"recorded there yet"
            )
        if found is None:
            found = db.run(lambda conn: _create_schema(db, conn), write=True)
    except (StoreVersionError, StoreUnreachable, StoreNotFound):
        raise
    except StoreError as exc:
        # Whatever fails while opening (a file that is not a database, say) means the store
        # cannot be used.
        raise StoreUnreachable(str(exc)) from exc
    if found < SCHEMA_VERSION and can_upgrade(found) and db.read_only:
        raise StoreNeedsUpgrade(
            f"run store {db.display_url} has schema version {found}, from an older wattwise: "
            f"upgrade it in place with `wattwise runs upgrade` (every run is kept), or point "
            f"{ENV_VAR} at another store"
        )
    if found < SCHEMA_VERSION and can_upgrade(found):
        found = db.run(lambda conn: _upgrade_schema(db, conn), write=True)
    if found != SCHEMA_VERSION:
        if found > SCHEMA_VERSION:
            advice = "upgrade wattwise (pip install -U wattwise) to use it"
        else:
            advice = "it was written by an older wattwise; open it with that version"
        raise StoreVersionError(
            f"run store {db.display_url} has schema version {found}, this wattwise expects "
            f"{SCHEMA_VERSION}: {advice}, or point {ENV_VAR} at another store"
        )


def _upgrade_schema(db: Database, conn: sa.Connection) -> int:
    """Upgrade an older store in place (``_migrate.py``); the version it then holds."""
    if not db.is_sqlite:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_KEY)))
    found = rows.read_version(conn)
    if found is None:
        return _create_schema(db, conn)
    if found >= SCHEMA_VERSION:
        return found  # another process upgraded it first
    return upgrade(conn, found)


def _create_schema(db: Database, conn: sa.Connection) -> int:
    if not db.is_sqlite:
        # DDL is transactional in PostgreSQL; this lock makes concurrent first opens wait
        # for one another instead of racing on CREATE TABLE. (SQLite: BEGIN IMMEDIATE.)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_KEY)))
    found = rows.read_version(conn)
    if found is not None:
        return found
    _refuse_foreign_tables(db, conn)
    s.metadata.create_all(conn)
    conn.execute(s.meta.insert().values(key=SCHEMA_VERSION_KEY, value=str(SCHEMA_VERSION)))
    return SCHEMA_VERSION


def _refuse_foreign_tables(db: Database, conn: sa.Connection) -> None:
    """Refuse a store with wattwise tables but no schema version (not written by us)."""
    inspector = sa.inspect(conn)
    present = [t.name for t in s.metadata.sorted_tables if inspector.has_table(t.name)]
    if present:
        raise StoreVersionError(
            f"run store {db.display_url} has wattwise tables ({', '.join(present)}) but no "
            f"schema version: it was not written by this wattwise; point {ENV_VAR} at "
            f"another store"
        )
