"""Several real processes writing one store at once, and a tracking process killed mid-run.

Run on a SQLite file and (marked ``postgres``) a real PostgreSQL server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wattwise._records import RunStatus, Scope
from wattwise.store import RunStore

# A tracking process in miniature. argv: url run_id appends go_file shared
# It waits for go_file (so that all writers start together, on a store nobody created yet),
# then appends `appends` batches of one sample per component, reading now and then. With
# shared=1 the run exists already and this writer adds its own component to it.
WRITER = """
import os, socket, sys, time
from datetime import UTC, datetime
from pathlib import Path
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import RunStore
from wattwise._records import Gap, Sample, Scope

url, run_id, appends, go, shared = sys.argv[1:6]
appends, go, shared = int(appends), Path(go), shared == "1"
source = Source(Method.MEASURED, "test-counter")
if shared:
    comps = [Component(f"writer-{os.getpid()}", ComponentKind.CPU, source)]
else:
    comps = [Component(f"cpu:package-{i}", ComponentKind.CPU, source) for i in range(3)]
while not go.exists():
    time.sleep(0.002)
store = RunStore.open(url)
if shared:
    store.add_components(run_id, comps)
else:
    store.begin_run(run_id=run_id, name="writer", scope=Scope.MACHINE,
                    started_at=datetime.now(UTC), host=socket.gethostname(), pid=os.getpid(),
                    command=None, components=comps, baseline_power_w=None)
for i in range(appends):
    gaps = [Gap(comps[0].name, float(i), i + 0.5, "flaky")] if i % 50 == 0 else []
    store.append(run_id, samples=[Sample(c.name, float(i), i + 1.0, 1.0) for c in comps],
                 gaps=gaps, heartbeat_at=datetime.now(UTC))
    if i % 25 == 0:
        store.list_runs(limit=5)
store.close()
"""

# argv: url run_id. Begins a run, appends, says "ready" and goes on appending until killed.
VICTIM = """
import os, socket, sys, time
from datetime import UTC, datetime
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import RunStore
from wattwise._records import Sample, Scope

url, run_id = sys.argv[1], sys.argv[2]
source = Source(Method.MEASURED, "test-counter")
comps = [Component("cpu:package-0", ComponentKind.CPU, source, relative_uncertainty=0.1),
         Component("gpu:0", ComponentKind.GPU, source)]
store = RunStore.open(url)
store.begin_run(run_id=run_id, name="victim", scope=Scope.MACHINE,
                started_at=datetime.now(UTC), host=socket.gethostname(), pid=os.getpid(),
                command=("python", "train.py"), components=comps, baseline_power_w=2.0)
t = 0.0
while True:
    store.append(run_id, samples=[Sample(c.name, t, t + 0.5, 3.0) for c in comps], gaps=[],
                 heartbeat_at=datetime.now(UTC))
    t += 0.5
    if t == 2.5:
        print("ready", flush=True)
    time.sleep(0.01)
"""

WRITERS = 4
APPENDS = 150


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shared", [False, True], ids=["own-runs", "one-shared-run"])
def test_concurrent_writers_all_succeed(
    store_url: str, tmp_path: Path, child_env: dict[str, str], shared: bool
) -> None:
    go = tmp_path / "go"
    shared_id = "5" * 32
    if shared:
        with RunStore.open(store_url) as store:
            store.begin_run(
                run_id=shared_id,
                name="shared",
                scope=Scope.MACHINE,
                started_at=datetime.now(UTC),
                host="elsewhere",
                pid=1,
                command=None,
                components=[],
                baseline_power_w=None,
            )
    flag = "1" if shared else "0"
    run_ids = [shared_id if shared else f"{w:032x}" for w in range(WRITERS)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, run_id, str(APPENDS), str(go), flag],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id in run_ids
    ]
    go.touch()
    failures = []
    for writer in writers:
        _, err = writer.communicate(timeout=100)
        if writer.returncode != 0:
            failures.append(f"exit {writer.returncode}: {err.strip()[-2000:]}")
    assert failures == []

    with RunStore.open(store_url) as store:
        if shared:
            run = store.get_run(shared_id, with_samples=True)
            assert len(run.components) == WRITERS
            assert len(run.samples) == WRITERS * APPENDS
            assert all(c.energy_j == APPENDS for c in run.components)
            assert len(run.gaps) == WRITERS * APPENDS // 50
        else:
            runs = store.list_runs()
            assert sorted(r.run_id for r in runs) == run_ids
            for run in runs:
                assert len(store.samples(run.run_id)) == 3 * APPENDS
                assert [c.energy_j for c in run.components] == [APPENDS] * 3
                assert run.energy_j == 3 * APPENDS
                assert len(run.gaps) == APPENDS // 50
                # Each writer exited without finishing its run.
                assert run.status is RunStatus.INTERRUPTED


@pytest.mark.timeout(60)
def test_a_killed_tracking_process_leaves_an_interrupted_run(
    store_url: str, child_env: dict[str, str]
) -> None:
    run_id = "dead" + "0" * 28
    with subprocess.Popen(
        [sys.executable, "-c", VICTIM, store_url, run_id],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as victim:
        assert victim.stdout is not None
        line = victim.stdout.readline()
        if line.strip() != "ready":
            victim.kill()
            _, err = victim.communicate()
            pytest.fail(f"the tracking child failed: {err.strip()[-2000:]}")
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
        assert victim.returncode == -signal.SIGKILL

    with RunStore.open(store_url) as store:
        run = store.get_run("dead", with_samples=True)
    assert run.status is RunStatus.INTERRUPTED
    assert run.ended_at is None
    assert run.command == ("python", "train.py")
    # Every committed append is there, whole: two samples per append, none half-written.
    assert len(run.samples) >= 10
    assert len(run.samples) % 2 == 0
    appended = len(run.samples) // 2
    cpu, gpu = run.components
    assert cpu.energy_j == pytest.approx(3.0 * appended)
    assert cpu.uncertainty_j == pytest.approx(0.3 * appended)
    assert gpu.energy_j == pytest.approx(3.0 * appended)
    assert run.energy_j == pytest.approx(6.0 * appended)
    assert run.duration_s > 0
    assert run.net_energy_j == pytest.approx(run.energy_j - 2.0 * run.duration_s)
