"""The run store against real databases: a SQLite file under tmp_path and (marked
``postgres``) a real PostgreSQL server. Tests taking ``store_url`` run on both."""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from wattwise import ConfigError, RunNotFound, StoreError, StoreUnreachable, StoreVersionError
from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import SCHEMA_VERSION, STALE_AFTER_S, RunStore, _backend

RAPL = Source(Method.MEASURED, "rapl-powercap", "/sys/class/powercap/intel-rapl:0")
CPU = Component("cpu:package-0", ComponentKind.CPU, RAPL, device="0", relative_uncertainty=0.02)
CORE = Component("cpu:core-0", ComponentKind.CPU_CORE, RAPL, counted=False, device="0")
GPU = Component(
    "gpu:0",
    ComponentKind.GPU,
    Source(Method.MEASURED, "nvml-energy-counter"),
    device="0",
    relative_uncertainty=0.05,
)
RAM = Component(
    "ram",
    ComponentKind.RAM,
    Source(Method.ESTIMATED, "ram-0.3725-w-per-gb", "16 GiB"),
    relative_uncertainty=0.3,
)
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
HOST = socket.gethostname()


def energy(comp: Component, energy_j: float, gap_s: float = 0.0) -> ComponentEnergy:
    return ComponentEnergy(
        name=comp.name,
        kind=comp.kind,
        source=comp.source,
        counted=comp.counted,
        energy_j=energy_j,
        uncertainty_j=energy_j * comp.relative_uncertainty,
        gap_s=gap_s,
        device=comp.device,
    )


def begin(
    store: RunStore,
    run_id: str,
    *,
    name: str = "train",
    started_at: datetime = T0,
    host: str = HOST,
    pid: int | None = None,
    components: tuple[Component, ...] = (CPU, CORE, GPU),
    baseline_power_w: float | None = 5.0,
) -> None:
    store.begin_run(
        run_id=run_id,
        name=name,
        scope=Scope.PROCESS,
        started_at=started_at,
        host=host,
        pid=os.getpid() if pid is None else pid,
        command=("python", "train.py", "--epochs", "1"),
        components=components,
        baseline_power_w=baseline_power_w,
    )


# The timeline of a 3-s run: the GPU is lost for a second, RAM is found after a second.
SAMPLES_1 = (
    Sample(CPU.name, 0.0, 1.0, 10.0),
    Sample(CORE.name, 0.0, 1.0, 4.0),
    Sample(GPU.name, 0.0, 1.0, 50.0),
)
SAMPLES_2 = (
    Sample(CPU.name, 1.0, 2.0, 12.0),
    Sample(CORE.name, 1.0, 2.0, 5.0),
    Sample(GPU.name, 1.0, 2.0, None, "driver reset"),
    Sample(RAM.name, 1.0, 2.0, 1.5),
)
SAMPLES_3 = (
    Sample(CPU.name, 2.0, 3.0, 11.0),
    Sample(CORE.name, 2.0, 3.0, 4.5),
    Sample(GPU.name, 2.0, 3.0, 60.0),
    Sample(RAM.name, 2.0, 3.0, 1.5),
)
GPU_GAP = Gap(GPU.name, 1.0, 2.0, "driver reset")
WIN_EVAL = WindowResult("eval", "epoch-1/eval", 1.25, 1.75, 6.0, 0.12, (energy(CPU, 6.0),))
WIN_EPOCH = WindowResult(
    "epoch-1", "epoch-1", 0.5, 2.5, 100.0, 3.5, (energy(CPU, 22.0), energy(GPU, 78.0, 1.0))
)
CARBON = CarbonFigures(
    emissions_g=0.012, intensity_g_per_kwh=380.5, zone="DE", pue=1.2, intensity_source="Ember 2023"
)


def record_run(store: RunStore, run_id: str, *, started_at: datetime = T0) -> RunResult:
    """Write a run the way the tracker does, up to (not including) finish_run, and return
    the result the tracker would then finish it with."""
    begin(store, run_id, started_at=started_at)
    beat = [started_at + timedelta(seconds=s) for s in (1, 2, 3)]
    store.append(run_id, samples=SAMPLES_1, gaps=[], heartbeat_at=beat[0])
    store.add_components(run_id, [RAM, CPU])  # CPU is known already: skipped
    # The gap goes out while still open, then again once it ended.
    store.append(
        run_id, samples=SAMPLES_2, gaps=[replace(GPU_GAP, end_s=1.5)], heartbeat_at=beat[1]
    )
    store.add_window(run_id, WIN_EVAL)
    store.append(run_id, samples=SAMPLES_3, gaps=[GPU_GAP], heartbeat_at=beat[2])
    return final_result(run_id, started_at)


def final_result(run_id: str, started_at: datetime = T0) -> RunResult:
    """The completed run of :func:`record_run`."""
    components = (energy(CPU, 33.0), energy(CORE, 13.5), energy(GPU, 110.0, 1.0), energy(RAM, 3.0))
    total = sum(c.energy_j for c in components if c.counted)
    # Three sensors (RAPL, NVML, the RAM model): independent, so in quadrature.
    uncertainty = math.hypot(*(c.uncertainty_j for c in components if c.counted))
    # Not stored: read back as the run's uncertainty plus the 15 J of baseline subtracted
    # at the largest relative uncertainty of the counted components.
    baseline_relative = max(c.relative_uncertainty for c in (CPU, GPU, RAM))
    return RunResult(
        run_id=run_id,
        name="train",
        status=RunStatus.COMPLETED,
        scope=Scope.PROCESS,
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=3),
        duration_s=3.0,
        energy_j=total,
        uncertainty_j=uncertainty,
        baseline_power_w=5.0,
        net_energy_j=total - 15.0,
        net_uncertainty_j=uncertainty + 15.0 * baseline_relative,
        components=components,
        windows=(WIN_EVAL, WIN_EPOCH),
        gaps=(GPU_GAP, Gap(RAM.name, 0.0, 1.0, "not found yet", recovered=True)),
        exit_code=0,
        command=("python", "train.py", "--epochs", "1"),
        host=HOST,
        pid=os.getpid(),
        carbon=CARBON,
        samples=SAMPLES_1 + SAMPLES_2 + SAMPLES_3,
    )


def row_counts(url: str) -> dict[str, int]:
    if "://" not in url:
        url = f"sqlite:///{url}"
    url = url.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: conn.execute(sa.text(f"SELECT count(*) FROM wattwise_{table}")).scalar_one()
                for table in ("runs", "components", "windows", "gaps", "samples")
            }
    finally:
        engine.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[RunStore]:
    opened = RunStore.open(store_url)
    yield opened
    opened.close()


# -- round trips ----------------------------------------------------------------------------


def test_full_run_round_trips(store: RunStore) -> None:
    result = record_run(store, "a" * 32)
    store.finish_run(result)

    assert store.get_run("a" * 32, with_samples=True) == result
    assert store.get_run("a" * 32) == replace(result, samples=())
    assert store.samples("a" * 32) == list(result.samples)
    assert store.list_runs() == [replace(result, samples=())]
    assert store.get_run("a" * 32).started_at.tzinfo is not None


def test_timestamps_come_back_as_the_same_instant_in_utc(store: RunStore) -> None:
    paris = timezone(timedelta(hours=2))
    begin(store, "b" * 32, started_at=T0.astimezone(paris))
    run = store.get_run("b" * 32)
    assert run.started_at == T0
    assert run.started_at.utcoffset() == timedelta(0)


def test_finish_run_is_idempotent(store: RunStore, store_url: str) -> None:
    result = record_run(store, "c" * 32)
    store.finish_run(result)
    counts = row_counts(store_url)
    store.finish_run(result)
    store.finish_run(result)

    assert row_counts(store_url) == counts
    assert counts == {"runs": 1, "components": 4, "windows": 2, "gaps": 2, "samples": 11}
    assert store.get_run("c" * 32, with_samples=True) == result


def test_finish_run_without_begin_stores_the_whole_run(store: RunStore) -> None:
    result = final_result("e" * 32)
    store.finish_run(result)
    assert store.get_run("e" * 32, with_samples=True) == result


def test_finish_keeps_carbon_and_command_it_does_not_know(store: RunStore) -> None:
    result = record_run(store, "f" * 32)
    store.set_carbon("f" * 32, CARBON)
    store.finish_run(replace(result, carbon=None, command=None))
    run = store.get_run("f" * 32)
    assert run.carbon == CARBON
    assert run.command == result.command


def test_set_carbon_replaces_emissions(store: RunStore) -> None:
    store.finish_run(replace(record_run(store, "1" * 32), carbon=None))
    assert store.get_run("1" * 32).carbon is None
    store.set_carbon("1" * 32, CARBON)
    assert store.get_run("1" * 32).carbon == CARBON
    later = replace(CARBON, emissions_g=0.02, intensity_source="Electricity Maps (live)")
    store.set_carbon("1" * 32, later)
    assert store.get_run("1" * 32).carbon == later


def test_failed_run_keeps_exit_code_and_no_baseline(store: RunStore) -> None:
    begin(store, "2" * 32, baseline_power_w=None)
    failed = RunResult(
        run_id="2" * 32,
        name="train",
        status=RunStatus.FAILED,
        scope=Scope.PROCESS,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=1),
        duration_s=1.0,
        energy_j=0.0,
        uncertainty_j=0.0,
        exit_code=3,
        command=("python", "train.py", "--epochs", "1"),
        host=HOST,
        pid=os.getpid(),
    )
    store.finish_run(failed)
    assert store.get_run("2" * 32) == failed


def test_finish_run_refuses_a_running_status(store: RunStore) -> None:
    result = record_run(store, "3" * 32)
    with pytest.raises(ConfigError, match="final status"):
        store.finish_run(replace(result, status=RunStatus.RUNNING))


# -- lookups ---------------------------------------------------------------------------------


def test_prefix_lookup(store: RunStore) -> None:
    ids = ["abcd" + "1" * 28, "abcd" + "2" * 28, "ab_d" + "3" * 28]
    for i, run_id in enumerate(ids):
        begin(store, run_id, started_at=T0 + timedelta(minutes=i))

    assert store.get_run("abcd1").run_id == ids[0]
    assert store.get_run(ids[1]).run_id == ids[1]
    assert [s.component for s in store.samples("abcd2")] == []
    with pytest.raises(ConfigError, match="ambiguous") as ambiguous:
        store.get_run("abcd")
    assert ids[0] in str(ambiguous.value)
    assert ids[1] in str(ambiguous.value)
    assert "\n" not in str(ambiguous.value)
    with pytest.raises(RunNotFound, match="'0000'"):
        store.get_run("0000")
    with pytest.raises(ConfigError, match="at least 4"):
        store.get_run("ab")
    # LIKE wildcards in a prefix are plain characters.
    assert store.get_run("ab_d").run_id == ids[2]
    with pytest.raises(RunNotFound):
        store.get_run("abc%")
    with pytest.raises(RunNotFound):
        store.samples("9999")


def test_list_runs_newest_first(store: RunStore) -> None:
    starts = {"old": T0, "new": T0 + timedelta(hours=2), "mid": T0 + timedelta(hours=1)}
    for i, (name, started) in enumerate(starts.items()):
        begin(store, f"{i:032d}", name=name, started_at=started, host="elsewhere")
    names = [r.name for r in store.list_runs()]
    assert names == ["new", "mid", "old"]
    assert [r.name for r in store.list_runs(limit=2)] == ["new", "mid"]
    assert all(r.samples == () for r in store.list_runs())


def test_writes_to_an_unknown_run_raise_run_not_found(store: RunStore) -> None:
    beat = datetime.now(UTC)
    with pytest.raises(RunNotFound):
        store.append("0" * 32, samples=[], gaps=[], heartbeat_at=beat)
    with pytest.raises(RunNotFound):
        store.add_window("0" * 32, WIN_EVAL)
    with pytest.raises(RunNotFound):
        store.add_components("0" * 32, [RAM])
    with pytest.raises(RunNotFound):
        store.set_carbon("0" * 32, CARBON)


def test_begin_run_twice_is_an_error(store: RunStore) -> None:
    begin(store, "4" * 32)
    with pytest.raises(StoreError, match="already exists"):
        begin(store, "4" * 32)


def test_naive_datetimes_are_refused(store: RunStore) -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        begin(store, "5" * 32, started_at=datetime(2024, 5, 1, 12, 0))
    begin(store, "5" * 32)
    with pytest.raises(ConfigError, match="timezone-aware"):
        store.append("5" * 32, samples=[], gaps=[], heartbeat_at=datetime(2024, 5, 1, 12, 0))


# -- running and interrupted runs ------------------------------------------------------------


def test_running_run_is_rebuilt_from_its_samples(store: RunStore) -> None:
    started = datetime.now(UTC) - timedelta(seconds=10)
    record_run(store, "6" * 32, started_at=started)
    run = store.get_run("6" * 32)

    assert run.status is RunStatus.RUNNING
    assert run.ended_at is None
    assert run.duration_s == pytest.approx(3.0)
    by_name = {c.name: c for c in run.components}
    assert list(by_name) == [CPU.name, CORE.name, GPU.name, RAM.name]
    assert by_name[CPU.name] == energy(CPU, 33.0)
    assert by_name[CORE.name] == energy(CORE, 13.5)
    assert by_name[GPU.name] == energy(GPU, 110.0, gap_s=1.0)  # the gap is not zero energy
    assert by_name[RAM.name] == energy(RAM, 3.0)
    assert run.energy_j == pytest.approx(33.0 + 110.0 + 3.0)  # the core is not counted
    # RAPL, NVML and the RAM model are independent: root-sum-square (was the linear 7.06 J).
    assert run.uncertainty_j == pytest.approx(math.hypot(33.0 * 0.02, 110.0 * 0.05, 3.0 * 0.3))
    assert run.net_energy_j == pytest.approx(146.0 - 5.0 * 3.0)
    assert run.windows == (WIN_EVAL,)
    assert run.gaps == (GPU_GAP,)
    assert run.carbon is None


def test_a_recovered_gap_loses_no_time(store: RunStore) -> None:
    begin(store, "7" * 32, components=(GPU,))
    store.append(
        "7" * 32,
        samples=[Sample(GPU.name, 0.0, 1.0, None, "busy"), Sample(GPU.name, 0.0, 2.0, 40.0)],
        gaps=[Gap(GPU.name, 0.0, 1.0, "busy", recovered=True)],
        heartbeat_at=datetime.now(UTC),
    )
    (gpu,) = store.get_run("7" * 32).components
    assert gpu.energy_j == 40.0
    assert gpu.gap_s == 0.0


def test_stale_heartbeat_means_interrupted(store: RunStore) -> None:
    now = datetime.now(UTC)
    begin(store, "8" * 32, started_at=now - timedelta(seconds=100), host="elsewhere", pid=1)
    store.append(
        "8" * 32,
        samples=SAMPLES_1,
        gaps=[],
        heartbeat_at=now - timedelta(seconds=STALE_AFTER_S + 30),
    )
    begin(store, "9" * 32, started_at=now - timedelta(seconds=100), host="elsewhere", pid=1)
    store.append("9" * 32, samples=SAMPLES_1, gaps=[], heartbeat_at=now)

    stale = store.get_run("8" * 32)
    assert stale.status is RunStatus.INTERRUPTED
    assert stale.duration_s == pytest.approx(100 - STALE_AFTER_S - 30, abs=0.01)
    assert stale.energy_j == pytest.approx(60.0)
    # Another host's process cannot be checked: a fresh heartbeat means running.
    assert store.get_run("9" * 32).status is RunStatus.RUNNING
    statuses = {r.run_id: r.status for r in store.list_runs()}
    assert statuses == {"8" * 32: RunStatus.INTERRUPTED, "9" * 32: RunStatus.RUNNING}


def test_dead_local_process_means_interrupted(store: RunStore) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    begin(store, "a1" * 16, started_at=datetime.now(UTC) - timedelta(seconds=5), pid=dead_pid)
    begin(store, "a2" * 16, started_at=datetime.now(UTC) - timedelta(seconds=5))  # this process

    assert store.get_run("a1" * 16).status is RunStatus.INTERRUPTED
    assert store.get_run("a2" * 16).status is RunStatus.RUNNING


def test_a_reused_pid_is_not_the_run_s_process(store: RunStore) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as newer:
        try:
            # The run began long before this process existed: its pid was reused.
            begin(
                store,
                "b1" * 16,
                started_at=datetime.now(UTC) - timedelta(minutes=10),
                pid=newer.pid,
            )
            store.append("b1" * 16, samples=[], gaps=[], heartbeat_at=datetime.now(UTC))
            assert store.get_run("b1" * 16).status is RunStatus.INTERRUPTED
        finally:
            newer.kill()


def test_a_late_finish_wins_over_interrupted(store: RunStore) -> None:
    result = record_run(store, "c1" * 16, started_at=datetime.now(UTC) - timedelta(minutes=5))
    assert store.get_run("c1" * 16).status is RunStatus.INTERRUPTED
    store.finish_run(result)
    assert store.get_run("c1" * 16, with_samples=True) == result


# -- opening ----------------------------------------------------------------------------------


def test_open_resolves_argument_then_env_then_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("WATTWISE_STORE", raising=False)
    with RunStore.open() as default:
        assert default.display_url == str(tmp_path / "xdg" / "wattwise" / "runs.sqlite")
    assert (tmp_path / "xdg" / "wattwise" / "runs.sqlite").is_file()

    monkeypatch.setenv("WATTWISE_STORE", str(tmp_path / "env.sqlite"))
    with RunStore.open() as from_env:
        assert from_env.display_url == str(tmp_path / "env.sqlite")
    with RunStore.open(f"sqlite:///{tmp_path / 'arg.sqlite'}") as from_arg:
        begin(from_arg, "d1" * 16)
    assert (tmp_path / "arg.sqlite").is_file()


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        begin(store, "d2" * 16)
    with sqlite3.connect(tmp_path / "runs.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_in_memory_sqlite_store() -> None:
    with RunStore.open("sqlite://") as store:
        begin(store, "d3" * 16)
        assert [r.run_id for r in store.list_runs()] == ["d3" * 16]


def test_constructor_does_no_io(tmp_path: Path) -> None:
    RunStore(str(tmp_path / "nowhere" / "runs.sqlite"))
    RunStore("postgresql://nobody@127.0.0.1:1/none")
    assert not (tmp_path / "nowhere").exists()


def test_display_url_masks_passwords() -> None:
    store = RunStore("postgresql://me:s3cret@db.example:5432/runs?sslmode=require&password=s3cret")
    assert "s3cret" not in store.display_url
    assert store.display_url.startswith("postgresql://me:***@db.example:5432/runs")
    assert "s3cret" not in repr(store)


def test_other_schema_version_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore.open(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE wattwise_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()

    with pytest.raises(StoreVersionError) as caught:
        RunStore.open(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version 99, this wattwise expects {SCHEMA_VERSION}" in message
    assert "upgrade wattwise" in message
    assert "\n" not in message


def test_tables_without_a_version_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE wattwise_runs (run_id TEXT)")
    conn.close()
    with pytest.raises(StoreVersionError, match="no schema version"):
        RunStore.open(str(path))


def test_a_path_that_cannot_be_created_is_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnreachable) as caught:
        RunStore.open(str(blocker / "sub" / "runs.sqlite"))
    assert str(blocker / "sub" / "runs.sqlite") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_a_database_is_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not SQLite at all, just some bytes " * 100)
    with pytest.raises(StoreUnreachable, match="not a database") as caught:
        RunStore.open(str(path))
    assert "\n" not in str(caught.value)


def test_unsupported_or_malformed_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported run store"):
        RunStore.open("mysql://me@localhost/runs")
    with pytest.raises(ConfigError, match="empty"):
        RunStore.open(" ")


def test_missing_postgres_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreUnreachable, match=r"pip install 'wattwise\[postgres\]'"):
        RunStore.open("postgresql://me:pw@127.0.0.1:1/runs")


# -- SQLite locking ---------------------------------------------------------------------------


@pytest.fixture
def impatient_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make SQLite's own busy wait short, so that the store's retries do the waiting."""
    monkeypatch.setattr(_backend, "_SQLITE_BUSY_TIMEOUT_S", 0.05)


@pytest.mark.usefixtures("impatient_sqlite")
def test_sqlite_writes_wait_out_a_lock_held_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with RunStore.open(str(path)) as store:
        begin(store, "e1" * 16)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        errors: list[BaseException] = []

        def write() -> None:
            try:
                store.append("e1" * 16, samples=SAMPLES_1, gaps=[], heartbeat_at=T0)
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=write)
        started = time.monotonic()
        writer.start()
        time.sleep(0.5)
        holder.execute("COMMIT")
        holder.close()
        writer.join(10)
        assert errors == []
        assert time.monotonic() - started >= 0.5
        assert store.samples("e1" * 16) == list(SAMPLES_1)


@pytest.mark.usefixtures("impatient_sqlite")
def test_sqlite_gives_up_on_a_lock_that_is_never_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_backend, "_SQLITE_LOCK_GIVE_UP_S", 0.3)
    path = tmp_path / "runs.sqlite"
    with RunStore.open(str(path)) as store:
        begin(store, "e2" * 16)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked by another process") as caught:
                store.append("e2" * 16, samples=SAMPLES_1, gaps=[], heartbeat_at=T0)
            assert "\n" not in str(caught.value)
            # Reads are not blocked by the writer (WAL).
            assert store.get_run("e2" * 16).name == "train"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
