"""Shared fixtures.

* ``postgres_url``: a database on a real, throwaway PostgreSQL server started for the session
  (initdb + pg_ctl, as the ``postgres`` user when we are root, listening on 127.0.0.1 and a
  socket in its temporary directory only). Skipped when the server binaries are missing,
  *failed* instead when the ``CI`` environment variable is set.
* ``postgres_db_url``: a fresh, empty database on that server for one test.
* ``store_url``: a fresh store for one test, on SQLite and (marked ``postgres`` and ``slow``)
  PostgreSQL.
* ``child_env``: the environment a child Python needs to import this checkout of wattwise.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import HealthCheck, settings

import wattwise

# This machine is shared and noisy: a Hypothesis example's time says nothing about the code,
# so no example fails for being slow (each test still sets how many examples it draws).
settings.register_profile("wattwise", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("wattwise")

_PG_USER = "wattwise"
_PG_START_TRIES = 3


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the PostgreSQL tests must run there)", pytrace=False)
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    """The PostgreSQL bin directory holding initdb and pg_ctl, or None.

    ``$WATTWISE_TEST_PG_BINDIR`` when set, else the newest /usr/lib/postgresql/*/bin, else
    the directory of ``initdb`` on PATH.
    """
    forced = os.environ.get("WATTWISE_TEST_PG_BINDIR")
    if forced:
        bindir = Path(forced)
        return bindir if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file() else None

    def major(path: Path) -> int:
        found = re.search(r"/postgresql/(\d+)", str(path))
        return int(found.group(1)) if found else 0

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PostgresServer:
    """initdb + pg_ctl in a temporary directory, run as ``postgres`` when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.workdir = Path(tempfile.mkdtemp(prefix="wattwise-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "server.log"
        self.password = secrets.token_hex(12)
        self.port = 0
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            # The server refuses to run as root: hand the directory to the postgres user.
            import pwd

            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.workdir)
                _skip_or_fail("running as root and there is no 'postgres' user to run the server")
            runuser = shutil.which("runuser")
            if runuser is None:
                shutil.rmtree(self.workdir)
                _skip_or_fail("running as root and runuser is missing (util-linux)")
            self.prefix = [str(runuser), "-u", "postgres", "--"]
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
            self._owner = (account.pw_uid, account.pw_gid)
        else:
            self._owner = (os.getuid(), os.getgid())

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self.prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()} {log}"
            )

    def start(self) -> None:
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, *self._owner)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            _PG_USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        last_error: Exception | None = None
        for _ in range(_PG_START_TRIES):  # another process may grab the free port first
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                return
            except RuntimeError as exc:
                last_error = exc
                time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def _pg_ctl_start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            timeout=90,
        )

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its data."""
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w", timeout=90)

    def resume(self) -> None:
        """Start a halted server again, on the same port."""
        self._pg_ctl_start()

    def stop(self) -> None:
        if self.data.exists():
            pg_ctl = str(self.bindir / "pg_ctl")
            subprocess.run(
                [*self.prefix, pg_ctl, "stop", "-D", str(self.data), "-m", "immediate", "-w"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.workdir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://{_PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=_PG_USER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql.encode())


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_PostgresServer]:
    bindir = _pg_bindir()
    if bindir is None:
        _skip_or_fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found in $WATTWISE_TEST_PG_BINDIR, "
            "/usr/lib/postgresql/*/bin or on PATH: install the postgresql server package"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip_or_fail("psycopg is not installed: pip install 'wattwise[postgres]'")
    server = _PostgresServer(bindir)
    try:
        server.start()
        server.admin(f"CREATE DATABASE {_PG_USER}_test")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(_postgres_server: _PostgresServer) -> str:
    """A ``postgresql://`` URL (with password) of a database on a throwaway local server."""
    return _postgres_server.url(f"{_PG_USER}_test")


@pytest.fixture
def postgres_db_url(_postgres_server: _PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server, dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    _postgres_server.admin(f"CREATE DATABASE {name}")
    try:
        yield _postgres_server.url(name)
    finally:
        _postgres_server.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def stoppable_postgres() -> Iterator[_PostgresServer]:
    """A PostgreSQL server of this test's own, which it may stop (``halt()``) and start
    again (``resume()``); ``url(name)`` after ``admin("CREATE DATABASE name")``."""
    bindir = _pg_bindir()
    if bindir is None:
        _skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not found")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip_or_fail("psycopg is not installed: pip install 'wattwise[postgres]'")
    server = _PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: a SQLite file that does not exist yet, or an empty PostgreSQL DB."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_db_url")
        return url
    return str(tmp_path / "store" / "runs.sqlite")


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    """Environment for a child ``python`` that must import this checkout of wattwise."""
    src = str(Path(wattwise.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(autouse=True)
def _isolated_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the user's real store: the default store is a temporary file."""
    monkeypatch.setenv("WATTWISE_STORE", str(tmp_path / "default-store" / "runs.sqlite"))


@pytest.fixture(autouse=True)
def _isolated_journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test leaves an outage journal in the user's real journal directory, nor replays
    one found there when its tracker starts."""
    monkeypatch.setenv("WATTWISE_JOURNAL_DIR", str(tmp_path / "default-journal"))


@pytest.fixture(autouse=True)
def _isolated_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the user's real state dir (where the CLI remembers shown notes)."""
    monkeypatch.setenv("WATTWISE_STATE_DIR", str(tmp_path / "state"))
