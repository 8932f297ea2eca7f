"""A journal left by a process that died during a store outage, written by a later process.

The dying process is real: a child that records a run in a real store (a SQLite file, and,
marked ``postgres``, a real PostgreSQL server), spills batches to its journal with the
tracker's own :class:`Journal`, and is killed with SIGKILL. A later tracker start, or
``wattwise runs recover``, writes what the journal holds once. At the end of the file, the
whole story on a real server that is stopped while a real tracker runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests._cli import one_error_line, wattwise

from wattwise._records import RunStatus, Sample, Scope, host_identity
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.testing import FakeClock
from wattwise.tracking import ReplayOutcome, StoreOutage, Tracker, recover_journals
from wattwise.tracking._journal import Journal, Outbox

CPU = Component("cpu", ComponentKind.CPU, Source(Method.MEASURED, "test-counter"))

# argv: url run_id journal mode. Records a run (one stored sample), spills three batches of
# four 1 J samples to the journal (the outage), then, by mode:
#   plain     - says "ready" and waits to be killed;
#   torn      - first writes half a line, as a crash in the middle of an append leaves it;
#   replaying - the store is back: replays the journal, and is killed once the first batch
#               committed, before the journal could be removed.
DIES = """
import os, sys, time
from datetime import UTC, datetime
from pathlib import Path
from wattwise._records import Sample, Scope, host_identity
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import RunStore
from wattwise.tracking._journal import Journal, Outbox

url, run_id, path, mode = sys.argv[1:5]
cpu = Component("cpu", ComponentKind.CPU, Source(Method.MEASURED, "test-counter"))
store = RunStore.open(url)
store.begin_run(run_id=run_id, name="dies in an outage", scope=Scope.MACHINE,
                started_at=datetime.now(UTC), host=host_identity(), pid=os.getpid(),
                command=None, components=[cpu], baseline_power_w=None)
store.append(run_id, samples=[Sample("cpu", 0.0, 1.0, 1.0)], gaps=(),
             heartbeat_at=datetime.now(UTC))
journal = Journal(Path(path))
for b in range(3):
    journal.append([Sample("cpu", 1.0 + 4 * b + i, 2.0 + 4 * b + i, 1.0) for i in range(4)])
if mode == "torn":
    with open(path, "ab") as f:
        f.write(b'[["cpu",13.0,14.0,1')
        f.flush()
        os.fsync(f.fileno())

def write_then_hang(batch):
    store.append(run_id, samples=batch, gaps=(), heartbeat_at=datetime.now(UTC))
    print("ready", flush=True)
    time.sleep(600)

if mode == "replaying":
    journal.replay(write_then_hang)
print("ready", flush=True)
time.sleep(600)
"""

JOURNALLED = 12  # samples in the three complete batches


def _start(
    url: str, run_id: str, journal: Path, mode: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", DIES, url, run_id, str(journal), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the tracking child failed: {err.strip()[-2000:]}")
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def _dies(url: str, run_id: str, journal: Path, mode: str, env: dict[str, str]) -> None:
    """A tracking process killed during (or just after) an outage, leaving ``journal``."""
    _kill(_start(url, run_id, journal, mode, env))
    assert journal.is_file()


def _keys(samples: list[Sample]) -> list[tuple[str, float, float]]:
    return [(s.component, s.t_start_s, s.t_end_s) for s in samples]


def _recovered(store: RunStore, run_id: str) -> None:
    """Every sample once, in order; the totals rebuilt from them as an interrupted run's."""
    stored = store.samples(run_id)
    assert _keys(stored) == [("cpu", float(i), i + 1.0) for i in range(1 + JOURNALLED)]
    run = store.get_run(run_id)
    assert run.status is RunStatus.INTERRUPTED
    assert run.energy_j == pytest.approx(1.0 + JOURNALLED)
    assert run.components[0].energy_j == pytest.approx(1.0 + JOURNALLED)
    # Its duration runs to the last heartbeat, moved up to the journal's last sample.
    assert run.duration_s == pytest.approx(1.0 + JOURNALLED, abs=0.01)


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **child_env,
        "WATTWISE_STORE": str(tmp_path / "unused.sqlite"),
        "WATTWISE_JOURNAL_DIR": str(tmp_path / "unused-journal"),
        "WATTWISE_STATE_DIR": str(tmp_path / "state"),
    }


def _replay_meter() -> ReplayMeter:
    gpu = Component("gpu:0", ComponentKind.GPU, Source(Method.MEASURED, "replay of nvml"))
    return ReplayMeter([gpu], [TraceInterval(gpu.name, 0.0, 1.0, 10.0)], loop=True)


def _next_tracker(store: RunStore, journal_dir: Path) -> Tracker:
    """A later process's tracker on ``store``, reading ``journal_dir`` as it starts."""
    return Tracker(
        "next",
        meters=[_replay_meter()],
        store=store,
        clock=FakeClock(wall=datetime.now(UTC)),
        outage=StoreOutage(journal_dir=journal_dir),
        emissions=False,
    )


@pytest.mark.timeout(120)
def test_a_later_tracker_start_writes_a_killed_process_s_journal_once(
    store_url: str, journal_dir: Path, env: dict[str, str]
) -> None:
    dead = "dead" + "0" * 28
    journal = journal_dir / f"{dead}.jsonl"
    # Killed while replaying: its first batch committed, the journal still holds it.
    _dies(store_url, dead, journal, "replaying", env)
    with RunStore.open(store_url) as store:
        assert len(store.samples(dead)) == 1 + 4
        t = _next_tracker(store, journal_dir)
        with t:
            pass
        assert not journal.exists()
        _recovered(store, dead)
        assert store.get_run(t.run_id).status is RunStatus.COMPLETED
    replayed = [w for w in t.warnings if w.startswith("replayed")]
    assert len(replayed) == 1, t.warnings
    assert f"{JOURNALLED - 4} samples of its 3 batches written" in replayed[0]
    assert "(4 were there already)" in replayed[0]


@pytest.mark.timeout(120)
def test_runs_recover_writes_it_once_and_again_writes_nothing(
    store_url: str, journal_dir: Path, env: dict[str, str], tmp_path: Path
) -> None:
    dead = "dead" + "1" * 28
    journal = journal_dir / f"{dead}.jsonl"
    _dies(store_url, dead, journal, "plain", env)
    copy = tmp_path / "copy.jsonl"
    shutil.copy(journal, copy)
    args = ("runs", "recover", "--journal-dir", str(journal_dir), "--store", store_url)

    first = wattwise(env, *args, "--json")
    assert first.returncode == 0, first.stderr
    (entry,) = json.loads(first.stdout)["journals"]
    assert entry["run_id"] == dead and entry["outcome"] == "replayed"
    assert (entry["batches"], entry["samples_written"]) == (3, JOURNALLED)
    assert entry["samples_stored_already"] == 0 and entry["kept_as"] is None
    assert not journal.exists()
    with RunStore.open(store_url) as store:
        _recovered(store, dead)

    again = wattwise(env, *args)  # nothing left to do
    assert again.returncode == 0, again.stderr
    assert "no journals in" in again.stdout
    # The same journal once more (as if it had not been removed): nothing is written twice.
    shutil.copy(copy, journal)
    twice = wattwise(env, *args, "--json")
    assert twice.returncode == 0, twice.stderr
    (entry,) = json.loads(twice.stdout)["journals"]
    assert (entry["samples_written"], entry["samples_stored_already"]) == (0, JOURNALLED)
    with RunStore.open(store_url) as store:
        _recovered(store, dead)


@pytest.mark.timeout(120)
def test_a_torn_last_line_is_ignored_and_reported(
    store_url: str, journal_dir: Path, env: dict[str, str]
) -> None:
    dead = "dead" + "2" * 28
    journal = journal_dir / f"{dead}.jsonl"
    _dies(store_url, dead, journal, "torn", env)
    proc = wattwise(env, "runs", "recover", "--journal-dir", str(journal_dir), "--store", store_url)
    assert proc.returncode == 0, proc.stderr
    assert f"{JOURNALLED} samples of its 3 batches written" in proc.stdout
    assert "cut short by the crash (19 bytes), was ignored" in proc.stdout
    assert not journal.exists()
    with RunStore.open(store_url) as store:
        _recovered(store, dead)


@pytest.mark.timeout(120)
def test_a_live_run_s_journal_is_left_alone_until_its_process_is_gone(
    store_url: str, journal_dir: Path, env: dict[str, str]
) -> None:
    live = "live" + "0" * 28
    journal = journal_dir / f"{live}.jsonl"
    proc = _start(store_url, live, journal, "plain", env)
    try:
        before = journal.read_bytes()
        with RunStore.open(store_url) as store:
            # Its heartbeat may be stale (the store was down): its pid says it lives.
            (replay,) = recover_journals(store, journal_dir)
            assert replay.outcome is ReplayOutcome.LIVE
            assert len(store.samples(live)) == 1
        assert journal.read_bytes() == before
    finally:
        _kill(proc)
    with RunStore.open(store_url) as store:
        (replay,) = recover_journals(store, journal_dir)
        assert replay.outcome is ReplayOutcome.REPLAYED
        _recovered(store, live)


def test_in_this_process_a_run_s_journal_waits_until_its_tracker_ended(
    tmp_path: Path, journal_dir: Path
) -> None:
    url = str(tmp_path / "runs.sqlite")
    run_id = "this" + "0" * 28
    with RunStore.open(url) as store:
        store.begin_run(
            run_id=run_id,
            name="in this process",
            scope=Scope.MACHINE,
            started_at=datetime.now(UTC),
            host=host_identity(),
            pid=os.getpid(),
            command=None,
            components=[CPU],
            baseline_power_w=None,
        )
        outbox = Outbox(
            store,
            run_id,
            StoreOutage(held_samples=1, journal_dir=journal_dir),
            warn=lambda _: None,
            now=lambda: datetime.now(UTC),
        )
        outbox.journal.append([Sample("cpu", float(i), i + 1.0, 1.0) for i in range(3)])
        (replay,) = recover_journals(store, journal_dir)
        assert replay.outcome is ReplayOutcome.LIVE  # its tracker may still replay it
        assert outbox.keep() == 3  # the run ends with the store still away
        (replay,) = recover_journals(store, journal_dir)
        assert replay.outcome is ReplayOutcome.REPLAYED
        assert len(store.samples(run_id)) == 3


def test_a_journal_of_a_run_tracked_elsewhere_or_unknown_is_kept(
    tmp_path: Path, journal_dir: Path, env: dict[str, str]
) -> None:
    url = str(tmp_path / "runs.sqlite")
    elsewhere, unknown = "e" * 32, "u" * 32
    with RunStore.open(url) as store:
        store.begin_run(
            run_id=elsewhere,
            name="on another host",
            scope=Scope.MACHINE,
            started_at=datetime.now(UTC),
            host="another-host",
            pid=1,
            command=None,
            components=[CPU],
            baseline_power_w=None,
        )
    for run_id in (elsewhere, unknown):
        Journal(journal_dir / f"{run_id}.jsonl").append([Sample("cpu", 0.0, 1.0, 1.0)])
    before = {p.name: p.read_bytes() for p in journal_dir.iterdir()}
    proc = wattwise(env, "runs", "recover", "--journal-dir", str(journal_dir), "--store", url)
    assert proc.returncode == 0, proc.stderr
    assert f"this store has no run {unknown}" in proc.stdout
    assert "tracked on host another-host" in proc.stdout
    assert "wrote 0 samples from 0 of 2 journals" in proc.stdout
    assert {p.name: p.read_bytes() for p in journal_dir.iterdir()} == before
    with RunStore.open(url) as store:
        assert store.samples(elsewhere) == []


def test_a_tracker_start_is_quiet_about_a_journal_of_another_store_s_run(
    tmp_path: Path, journal_dir: Path
) -> None:
    other = "0" * 31 + "f"
    journal = journal_dir / f"{other}.jsonl"
    Journal(journal).append([Sample("cpu", 0.0, 1.0, 1.0)])
    before = journal.read_bytes()
    with RunStore.open(str(tmp_path / "runs.sqlite")) as store:
        t = _next_tracker(store, journal_dir)
        with t:
            pass
        assert store.get_run(t.run_id).status is RunStatus.COMPLETED
    assert not [w for w in t.warnings if other in w], t.warnings
    assert journal.read_bytes() == before


def test_a_dry_run_writes_nothing(tmp_path: Path, journal_dir: Path, env: dict[str, str]) -> None:
    url = str(tmp_path / "runs.sqlite")
    dead = "dead" + "3" * 28
    _dies(url, dead, journal_dir / f"{dead}.jsonl", "replaying", env)
    before = {p.name: p.read_bytes() for p in journal_dir.iterdir()}
    with RunStore.open(url) as store:
        heartbeat = store.get_run(dead).duration_s
    proc = wattwise(
        env,
        "runs",
        "recover",
        "--dry-run",
        "--json",
        "--journal-dir",
        str(journal_dir),
        "--store",
        url,
    )
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["journals"]
    assert entry["outcome"] == "would-replay"
    assert (entry["samples_written"], entry["samples_stored_already"]) == (8, 4)
    assert {p.name: p.read_bytes() for p in journal_dir.iterdir()} == before
    with RunStore.open(url) as store:
        assert len(store.samples(dead)) == 5
        assert store.get_run(dead).duration_s == heartbeat


def test_a_damaged_line_keeps_the_journal_renamed_once_the_rest_is_written(
    tmp_path: Path, journal_dir: Path, env: dict[str, str]
) -> None:
    url = str(tmp_path / "runs.sqlite")
    dead = "dead" + "4" * 28
    journal = journal_dir / f"{dead}.jsonl"
    _dies(url, dead, journal, "plain", env)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"not json\n" + b"".join(lines[1:]))
    proc = wattwise(env, "runs", "recover", "--journal-dir", str(journal_dir), "--store", url)
    assert proc.returncode == 1, proc.stderr
    assert "but for line(s) 2, which hold no samples" in proc.stdout
    assert not journal.exists()
    assert (journal_dir / f"{dead}.jsonl.damaged").is_file()
    with RunStore.open(url) as store:
        _recovered(store, dead)


def test_bad_input_is_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    journal_dir = tmp_path / "journal"
    missing = wattwise(env, "runs", "recover", "--journal-dir", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "does not exist" in one_error_line(missing)
    Journal(journal_dir / f"{'a' * 32}.jsonl").append([Sample("cpu", 0.0, 1.0, 1.0)])
    no_store = wattwise(
        env,
        "runs",
        "recover",
        "--journal-dir",
        str(journal_dir),
        "--store",
        str(tmp_path / "none.sqlite"),
    )
    assert no_store.returncode == 2
    assert "give the store the runs were recorded in" in one_error_line(no_store)
    assert not (tmp_path / "none.sqlite").exists()
    unreachable = wattwise(
        env,
        "runs",
        "recover",
        "--journal-dir",
        str(journal_dir),
        "--store",
        "postgresql://nobody@127.0.0.1:1/none",
    )
    assert unreachable.returncode == 2
    assert "cannot use the run store" in one_error_line(unreachable)
    assert (journal_dir / f"{'a' * 32}.jsonl").is_file()


@pytest.mark.timeout(120)
def test_two_processes_replaying_one_journal_at_once_write_it_once(
    store_url: str, journal_dir: Path, env: dict[str, str]
) -> None:
    dead = "dead" + "5" * 28
    _dies(store_url, dead, journal_dir / f"{dead}.jsonl", "plain", env)
    written: list[int] = []
    go = threading.Barrier(2)

    def recover() -> None:
        with RunStore.open(store_url) as store:
            go.wait()
            written.extend(r.samples_written for r in recover_journals(store, journal_dir))

    threads = [threading.Thread(target=recover) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(written) == JOURNALLED
    with RunStore.open(store_url) as store:
        _recovered(store, dead)


# -- the whole story on a real server that is stopped ------------------------------------

# argv: url journal_dir. A real tracker on a replayed meter (10 Hz, flushed every 0.2 s,
# at most 10 samples held in memory); prints its run id, then runs until killed.
TRACKS = """
import sys, time
from pathlib import Path
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.tracking import StoreOutage, Tracker

url, journal_dir = sys.argv[1:3]
gpu = Component("gpu:0", ComponentKind.GPU, Source(Method.MEASURED, "replay of nvml"))
meter = ReplayMeter([gpu], [TraceInterval(gpu.name, 0.0, 1.0, 10.0)], loop=True)
t = Tracker("killed in an outage", meters=[meter], store=url, interval_s=0.1,
            flush_interval_s=0.2, emissions=False,
            outage=StoreOutage(held_samples=10, journal_dir=Path(journal_dir)))
t.start()
print(t.run_id, flush=True)
time.sleep(600)
"""


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait(until: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def tracking_child(
    env: dict[str, str],
) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_tracker_killed_while_the_server_is_down_is_recovered_once_it_is_back(
    stoppable_postgres: object,
    journal_dir: Path,
    env: dict[str, str],
    tracking_child: list[subprocess.Popen[str]],
) -> None:
    server = stoppable_postgres
    server.admin("CREATE DATABASE killed")  # type: ignore[attr-defined]
    url: str = server.url("killed")  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-c", TRACKS, url, str(journal_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tracking_child.append(proc)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert len(run_id) == 32, proc.communicate()[1]
    with RunStore.open(url) as store:
        _wait(lambda: len(store.samples(run_id)) >= 10, "samples before the outage")
    server.halt()  # type: ignore[attr-defined]
    journal = journal_dir / f"{run_id}.jsonl"
    _wait(lambda: _lines(journal) >= 3, "three batches spilled to the journal")
    _kill(proc)
    server.resume()  # type: ignore[attr-defined]
    journalled = [Sample(*r) for ln in journal.read_bytes().splitlines() for r in json.loads(ln)]
    with RunStore.open(url) as store:
        before = store.samples(run_id)
        assert not set(_keys(before)) & set(_keys(journalled))

    proc2 = wattwise(env, "runs", "recover", "--journal-dir", str(journal_dir), "--store", url)
    assert proc2.returncode == 0, proc2.stderr
    assert f"{len(journalled)} samples of its" in proc2.stdout
    assert not journal.exists()
    with RunStore.open(url) as store:
        stored = store.samples(run_id)
        run = store.get_run(run_id)
    keys = _keys(stored)
    assert len(set(keys)) == len(keys) == len(before) + len(journalled)
    ends = [s.t_end_s for s in stored]
    assert ends == sorted(ends)  # the journal's samples follow what was stored before
    assert run.status is RunStatus.INTERRUPTED
    assert run.energy_j == pytest.approx(sum(s.energy_j or 0.0 for s in stored), rel=1e-9)
    assert run.duration_s >= max(ends) - 1e-3
