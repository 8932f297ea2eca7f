"""Read-only commands write nothing, and a read-only store is readable (issue 11, section 4).

Listing, showing, comparing, exporting and reporting open the store read-only: a missing
store is never created (nor its directory), a store's bytes and its directory stay as they
were (no ``-wal``/``-shm`` left behind), a store on a read-only file system can be read, and
a plain path that looks like no SQLite file is refused. End to end, in real child processes,
on real SQLite files and (marked ``postgres``) a real PostgreSQL server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from wattwise import ConfigError, StoreError, StoreNotFound
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.tracking._tracker import Tracker

CPU = Component(
    "cpu:package-0",
    ComponentKind.CPU,
    Source(Method.MEASURED, "rapl-powercap"),
    relative_uncertainty=0.02,
)


def record_run(url: str, name: str) -> str:
    """Track a short real run (a replayed 10 W trace) into ``url``; its id."""
    meter = ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 3600.0, 36000.0)])
    clock = FakeClock(wall=datetime.now(UTC))  # runs recorded one after another stay in order
    tracker = Tracker(
        name, meters=[meter], store=url, interval_s=0.02, emissions=False, clock=clock
    )
    with tracker:
        clock.advance(0.05)
    assert tracker.result is not None
    return tracker.result.run_id


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time (ns)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def wattwise(
    env: dict[str, str], *args: str, cwd: Path, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "wattwise", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working directory for the child (a relative path lands here)."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The child's environment, with a default store that does not exist."""
    return dict(child_env, WATTWISE_STORE=str(tmp_path / "default" / "runs.sqlite"))


# -- a store that does not exist is not created ----------------------------------------------


def test_runs_list_on_a_missing_store_creates_no_directory(
    env: dict[str, str], work: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    proc = wattwise(env, "runs", "list", "--store", f"sqlite:///{missing}/x.db", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "no run store at" in proc.stdout and "nothing recorded yet" in proc.stdout
    assert not (tmp_path / "nonexistent").exists()

    proc = wattwise(env, "runs", "list", "--store", f"sqlite:///{missing}/x.db", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert not (tmp_path / "nonexistent").exists()
    assert list(work.iterdir()) == []


def test_the_issues_exact_missing_store_command(env: dict[str, str], work: Path) -> None:
    if Path("/nonexistent").exists():
        pytest.skip("/nonexistent exists on this machine")
    proc = wattwise(env, "runs", "list", "--store", "sqlite:////nonexistent/dir/x.db", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "no run store at sqlite:////nonexistent/dir/x.db" in proc.stdout
    assert not Path("/nonexistent").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--last"],
        ["report", "abcd1234"],
        ["report", "--study", "abcd1234"],
        ["runs", "show", "abcd1234"],
        ["runs", "export", "abcd1234", "--format", "json"],
        ["runs", "compare", "abcd1234", "bcde2345"],
    ],
)
def test_a_missing_store_is_one_line_and_nothing_is_created(
    env: dict[str, str], work: Path, tmp_path: Path, args: list[str]
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = wattwise(env, *args, cwd=work)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert f"no run store at {tmp_path / 'default' / 'runs.sqlite'}" in line
    assert "nothing recorded yet" in line and "wattwise run" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no default/ directory
    assert list(work.iterdir()) == []  # no wattwise-report/ either


@pytest.mark.slow
def test_not_a_url_is_refused_naming_the_accepted_forms(env: dict[str, str], work: Path) -> None:
    for args in (
        ["runs", "list", "--store", "not a url"],
        ["runs", "show", "abcd", "--store", "not a url"],
        ["run", "--store", "not a url", "--", "true"],
    ):
        proc = wattwise(env, *args, cwd=work)
        assert proc.returncode == 2, proc.stderr
        line = one_line_error(proc)
        assert "bad run store 'not a url'" in line
        for form in (".sqlite", ".db", "sqlite:///PATH", "postgresql://"):
            assert form in line
        assert list(work.iterdir()) == []  # no file called "not a url"


def test_plain_paths_new_ones_need_a_sqlite_suffix(tmp_path: Path) -> None:
    for bad in ("not a url", str(tmp_path / "runs"), "postgres:/me@host/db", "sqlite:x.db"):
        with pytest.raises(ConfigError, match=r"give a path ending in \.sqlite or \.db"):
            RunStore.open(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    for good in ("runs.sqlite", "runs.SQLITE3", "runs.db", "runs.db3"):
        RunStore.open(str(tmp_path / good)).close()
        assert (tmp_path / good).is_file()
    # An existing store is taken whatever its name.
    (tmp_path / "runs.db").rename(tmp_path / "my-runs")
    with RunStore.open(str(tmp_path / "my-runs"), read_only=True) as store:
        assert store.list_runs() == []


def test_an_empty_sqlite_file_is_no_store_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.touch()
    with pytest.raises(StoreNotFound, match="no wattwise tables"):
        RunStore.open(str(path), read_only=True)
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


# -- an existing store is left exactly as it was --------------------------------------------


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[str]]:
    """A SQLite store (alone in its directory) holding two finished runs."""
    path = tmp_path / "store" / "runs.sqlite"
    ids = [record_run(str(path), "first"), record_run(str(path), "second [x]")]
    assert sorted(p.name for p in path.parent.iterdir()) == ["runs.sqlite"]  # closed cleanly
    return path, ids


@pytest.mark.slow
def test_read_only_commands_leave_the_store_byte_for_byte(
    env: dict[str, str], work: Path, tmp_path: Path, filled: tuple[Path, list[str]]
) -> None:
    path, ids = filled
    before = snapshot(path.parent)
    out = tmp_path / "reports"
    commands = [
        ["runs", "list", "--json"],
        ["runs", "show", ids[0][:8], "--json"],
        ["runs", "compare", ids[0], ids[1], "--json"],
        ["runs", "export", ids[1], "--format", "csv"],
        ["report", "--last", "--out", str(out / "last.md")],
        ["report", ids[0], "--out", str(out / "first.html")],
    ]
    for args in commands:
        proc = wattwise(env, *args, "--store", str(path), cwd=work)
        assert proc.returncode == 0, (args, proc.stderr)
        assert snapshot(path.parent) == before, args  # same bytes, same mtime, no -wal/-shm
    proc = wattwise(env, "runs", "list", "--json", "--store", str(path), cwd=work)
    listed = json.loads(proc.stdout)
    assert [r["name"] for r in listed] == ["second [x]", "first"]
    assert (out / "last.md").is_file() and (out / "first.html").is_file()
    assert list(work.iterdir()) == []


def test_runs_being_recorded_are_seen_by_a_read_only_reader(
    env: dict[str, str], work: Path, tmp_path: Path
) -> None:
    path = tmp_path / "live" / "runs.sqlite"
    record_run(str(path), "done")
    meter = ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 3600.0, 36000.0)])
    clock = FakeClock(wall=datetime.now(UTC))  # the reader judges liveness by the real time
    with Tracker("in progress", meters=[meter], store=str(path), interval_s=0.02, clock=clock):
        clock.advance(0.1)
        # The writer holds the store open: its -wal exists and holds the newest rows.
        assert path.with_name("runs.sqlite-wal").exists()
        proc = wattwise(env, "runs", "list", "--json", "--store", str(path), cwd=work)
        assert proc.returncode == 0, proc.stderr
        runs = {r["name"]: r["status"] for r in json.loads(proc.stdout)}
        assert runs == {"in progress": "running", "done": "completed"}


def test_a_read_only_store_refuses_writes(filled: tuple[Path, list[str]]) -> None:
    path, ids = filled
    before = snapshot(path.parent)
    with RunStore.open(str(path), read_only=True) as store:
        assert store.read_only
        result = store.get_run(ids[0])
        with pytest.raises(StoreError, match="opened read-only"):
            store.finish_run(result)
        with pytest.raises(StoreError, match="opened read-only"):
            store.create_study(study_id="s1", kind="sweep", name="x", params={})
        # Below our own guard, SQLite itself refuses (the connection is query_only).
        with (
            pytest.raises(sa.exc.OperationalError, match=r"readonly|read-only|query_only"),
            store._database().engine().connect() as conn,
        ):
            conn.exec_driver_sql("DELETE FROM wattwise_runs")
    assert snapshot(path.parent) == before


# -- a store on a read-only file system -----------------------------------------------------


def _read_only_mount_prefix(directory: Path) -> tuple[str, ...]:
    """A command prefix running its command with ``directory`` mounted read-only.

    A bind mount remounted read-only, in a new user and mount namespace (``unshare``): this
    works without root where user namespaces are enabled, and binds root too (root ignores
    permission bits, not a read-only mount). Skips where that is not possible.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is missing: cannot make a read-only mount")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", script, str(directory), "touch", str(directory / "probe")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()[:200]}")
    return (unshare, "-rm", "sh", "-c", script, str(directory))


@pytest.fixture
def read_only_store(filled: tuple[Path, list[str]]) -> tuple[Path, list[str], tuple[str, ...]]:
    """The filled store, and the prefix that runs a command with its directory read-only."""
    path, ids = filled
    return path, ids, _read_only_mount_prefix(path.parent)


@pytest.mark.slow
def test_a_store_on_a_read_only_file_system_can_be_listed_shown_and_reported(
    env: dict[str, str],
    work: Path,
    tmp_path: Path,
    read_only_store: tuple[Path, list[str], tuple[str, ...]],
) -> None:
    path, ids, prefix = read_only_store
    before = snapshot(path.parent)
    proc = wattwise(env, "runs", "list", "--json", "--store", str(path), cwd=work, prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert {r["run_id"] for r in json.loads(proc.stdout)} == set(ids)
    proc = wattwise(env, "runs", "show", ids[0], "--store", str(path), cwd=work, prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert "first" in proc.stdout
    out = tmp_path / "ro-report.md"
    proc = wattwise(
        env, "report", "--last", "--out", str(out), "--store", str(path), cwd=work, prefix=prefix
    )
    assert proc.returncode == 0, proc.stderr
    assert ids[1][:12] in out.read_text()
    # Recording there fails in one line, and the store is untouched.
    proc = wattwise(env, "run", "--store", str(path), "--", "true", cwd=work, prefix=prefix)
    assert proc.returncode == 2
    one_line_error(proc)
    assert snapshot(path.parent) == before


def test_a_wal_without_its_index_on_a_read_only_file_system_is_read_with_a_note(
    env: dict[str, str], work: Path, tmp_path: Path
) -> None:
    path = tmp_path / "live" / "runs.sqlite"
    record_run(str(path), "checkpointed")
    copy = tmp_path / "copy"
    copy.mkdir()
    meter = ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 3600.0, 36000.0)])
    clock = FakeClock()
    with Tracker("in wal", meters=[meter], store=str(path), interval_s=0.02, clock=clock):
        clock.advance(0.1)
        # A snapshot taken while a writer was at work: the database and its WAL, no -shm.
        shutil.copy2(path, copy / "runs.sqlite")
        shutil.copy2(path.with_name("runs.sqlite-wal"), copy / "runs.sqlite-wal")
    before = snapshot(copy)
    prefix = _read_only_mount_prefix(copy)
    proc = wattwise(
        env, "runs", "list", "--json", "--store", str(copy / "runs.sqlite"), cwd=work, prefix=prefix
    )
    assert proc.returncode == 0, proc.stderr
    assert "checkpointed" in {r["name"] for r in json.loads(proc.stdout)}
    assert "note:" in proc.stderr and "-shm" in proc.stderr
    assert snapshot(copy) == before


# -- PostgreSQL -----------------------------------------------------------------------------


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_empty_database_is_listed_empty_and_gets_no_tables(
    env: dict[str, str], work: Path, postgres_db_url: str
) -> None:
    proc = wattwise(env, "runs", "list", "--json", "--store", postgres_db_url, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    proc = wattwise(env, "report", "--last", "--store", postgres_db_url, cwd=work)
    assert proc.returncode == 2
    assert "no wattwise tables" in one_line_error(proc)
    assert _tables(postgres_db_url) == []
    assert list(work.iterdir()) == []


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_read_only_store_reads_and_the_server_refuses_writes(
    env: dict[str, str], work: Path, postgres_db_url: str
) -> None:
    run_id = record_run(postgres_db_url, "on postgres")
    proc = wattwise(env, "runs", "show", run_id[:8], "--json", "--store", postgres_db_url, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "on postgres"
    with (
        RunStore.open(postgres_db_url, read_only=True) as store,
        pytest.raises(sa.exc.InternalError, match="read-only transaction"),
        store._database().engine().begin() as conn,
    ):
        conn.execute(sa.text("DELETE FROM wattwise_runs"))
    with RunStore.open(postgres_db_url) as store:
        assert [r.run_id for r in store.list_runs()] == [run_id]


def test_sweep_status_creates_no_storage_and_no_store(
    env: dict[str, str], work: Path, tmp_path: Path
) -> None:
    pytest.importorskip("optuna")
    missing = tmp_path / "studies" / "optuna.db"
    proc = wattwise(
        env, "sweep", "status", "--storage", f"sqlite:///{missing}", "--study", "s", cwd=work
    )
    assert proc.returncode == 2
    assert f"no study storage at sqlite:///{missing}" in one_line_error(proc)
    assert not missing.parent.exists()
    assert not (tmp_path / "default").exists()  # nor the default wattwise store
