"""What only PostgreSQL has: URLs and drivers, servers that refuse, a shared schema.

The round trip, lookups and interrupted runs run on PostgreSQL too, through the ``store_url``
fixture of ``test_store.py`` and ``test_store_multiprocess.py``.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from wattwise import StoreUnreachable, StoreVersionError
from wattwise._records import RunStatus, Scope
from wattwise.store import SCHEMA_VERSION, RunStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _begin(store: RunStore, run_id: str) -> None:
    store.begin_run(
        run_id=run_id,
        name="pg",
        scope=Scope.MACHINE,
        started_at=datetime.now(UTC),
        host="elsewhere",
        pid=1,
        command=None,
        components=[],
        baseline_power_w=None,
    )


def _password(url: str) -> str:
    password = sa.make_url(url).password
    assert password
    return str(password)


def test_postgresql_urls_use_psycopg_3(postgres_db_url: str) -> None:
    assert postgres_db_url.startswith("postgresql://")
    with RunStore.open(postgres_db_url) as store:
        _begin(store, "a" * 32)
        engine = store._database().engine()
        assert engine.dialect.driver == "psycopg"
    # The other spellings reach the same database.
    for alias in ("postgres://", "postgresql+psycopg://"):
        with RunStore.open(postgres_db_url.replace("postgresql://", alias, 1)) as store:
            assert [r.run_id for r in store.list_runs()] == ["a" * 32]


def test_display_url_hides_the_password(postgres_db_url: str) -> None:
    with RunStore.open(postgres_db_url) as store:
        assert _password(postgres_db_url) not in store.display_url
        assert "***" in store.display_url


def test_a_refused_port_is_unreachable_in_one_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(StoreUnreachable) as caught:
            RunStore.open(f"postgresql://me:hunter2@127.0.0.1:{port}/runs")
    message = str(caught.value)
    assert message.startswith(f"cannot use the run store postgresql://me:***@127.0.0.1:{port}")
    assert "refused" in message.lower()
    assert "hunter2" not in message
    assert "\n" not in message


def test_a_wrong_password_is_unreachable(postgres_db_url: str) -> None:
    wrong = postgres_db_url.replace(_password(postgres_db_url), "not-the-password")
    with pytest.raises(StoreUnreachable, match="password authentication failed") as caught:
        RunStore.open(wrong)
    assert "not-the-password" not in str(caught.value)


def test_a_missing_database_is_unreachable(postgres_url: str) -> None:
    missing = sa.make_url(postgres_url).set(database="no_such_db")
    text = missing.render_as_string(hide_password=False)
    with pytest.raises(StoreUnreachable, match="no_such_db"):
        RunStore.open(text)


def test_other_schema_version_is_refused(postgres_db_url: str) -> None:
    RunStore.open(postgres_db_url).close()
    engine = sa.create_engine(postgres_db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE wattwise_meta SET value = '0'"))
    engine.dispose()

    with pytest.raises(StoreVersionError) as caught:
        RunStore.open(postgres_db_url)
    message = str(caught.value)
    assert f"schema version 0, this wattwise expects {SCHEMA_VERSION}" in message
    assert "older wattwise" in message
    assert _password(postgres_db_url) not in message


def test_tables_share_a_database_with_other_tools(postgres_db_url: str) -> None:
    engine = sa.create_engine(postgres_db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE runs (id integer)"))  # someone else's table
    with RunStore.open(postgres_db_url) as store:
        _begin(store, "b" * 32)
        assert store.get_run("bbbb").status is RunStatus.RUNNING
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"runs", "wattwise_meta", "wattwise_runs", "wattwise_samples"} <= tables
