"""Two hosts share a real PostgreSQL store and join one run: per-host components, gaps and
heartbeats, one total; a host with a skewed wall clock lands where it ran; a host that dies
is marked and the other goes on.

The two "hosts" are separate processes on this machine with distinct host identities
(``WATTWISE_HOST``), each reading a fake powercap tree at constant power (their own
machine, as far as each knows).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from _ddp import DRAM_W, PACKAGE_W, driven_powercap
from wattwise._records import MemberRole, RunResult, RunStatus
from wattwise.store import RunStore
from wattwise.testing import FakePowercap

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HOST = """
import os, signal, sys, time
from datetime import timedelta
import wattwise
from wattwise.tracking import SystemClock

class Skewed(SystemClock):  # this host's wall clock is SKEW_S off
    def now(self):
        return super().now() + timedelta(seconds=float(os.environ["SKEW_S"]))

seconds, die_after = float(sys.argv[1]), float(sys.argv[2])
with wattwise.track("multihost", interval_s=0.05, join=os.environ["RUN"], clock=Skewed()) as t:
    print(t.role.value, t.run_id, flush=True)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(0.02)  # the work: this host's meters run at constant power
        if 0 < die_after < time.monotonic() - start:
            os.kill(os.getpid(), signal.SIGKILL)
"""

RUN = "multihost-0123456789"


def _host(
    env: dict[str, str], name: str, seconds: float, *, skew_s: float = 0.0, die_after_s: float = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOST, str(seconds), str(die_after_s)],
        env={**env, "WATTWISE_HOST": name, "SKEW_S": str(skew_s), "RUN": RUN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _env(child_env: dict[str, str], url: str, fake: FakePowercap) -> dict[str, str]:
    env = {**child_env, "WATTWISE_STORE": url, "WATTWISE_POWERCAP_ROOT": str(fake.root)}
    for k in ("WATTWISE_RUN_ID", "RANK", "WORLD_SIZE", "CUDA_VISIBLE_DEVICES"):
        env.pop(k, None)
    return env


def _read(url: str, **kwargs: bool) -> RunResult:
    with RunStore.open(url, read_only=True) as store:
        assert [r.run_id for r in store.list_runs()] == [RUN]  # one run for both hosts
        return store.get_run(RUN, **kwargs)


def test_two_hosts_make_one_run_and_a_skewed_clock_does_not_move_the_timeline(
    child_env: dict[str, str], postgres_db_url: str, tmp_path: Path
) -> None:
    with driven_powercap(tmp_path / "sys") as fake:
        env = _env(child_env, postgres_db_url, fake)
        a = _host(env, "host-a", 3.0)
        b = _host(env, "host-b", 3.0, skew_s=7200.0)  # two hours ahead
        outs = [p.communicate(timeout=300) for p in (a, b)]
    for p, (out, err) in zip((a, b), outs, strict=True):
        assert p.returncode == 0, err
        assert out.split()[0] == "host"  # each host reads its own meters
    run = _read(postgres_db_url, with_samples=True)
    assert run.status is RunStatus.COMPLETED
    assert {h.host for h in run.hosts} == {"host-a", "host-b"}
    assert all(m.role is MemberRole.HOST for m in run.members)
    names = {c.name for c in run.components}
    assert {n.split("/")[0] for n in names} == {"host-a", "host-b"}
    # One total, the sum of the hosts; each host's energy is its own machine's.
    assert run.energy_j == pytest.approx(sum(h.energy_j for h in run.hosts))
    for m in run.members:
        assert m.energy_j == pytest.approx((PACKAGE_W + DRAM_W) * m.duration_s, rel=0.05)
    # The skewed host lands where it ran: its start from the server's clock, not its own.
    b_member = next(m for m in run.members if m.host == "host-b")
    assert 0.0 <= b_member.offset_s < 60.0
    assert abs((run.started_at - datetime.now(UTC)).total_seconds()) < 600
    assert run.duration_s < 60.0  # not two hours
    b_samples = [s for s in run.samples if s.component.startswith("host-b/")]
    assert b_samples and all(
        0.0 <= s.t_start_s <= s.t_end_s <= run.duration_s + 1e-6 for s in b_samples
    )
    # runs show lists both hosts and both members.
    shown = subprocess.run(
        [sys.executable, "-m", "wattwise", "runs", "show", RUN],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "host-a" in shown.stdout and "host-b" in shown.stdout
    assert "in the total" in shown.stdout
    report = tmp_path / "report.md"
    made = subprocess.run(
        [sys.executable, "-m", "wattwise", "report", RUN, "--out", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    text = report.read_text()
    assert "Hosts and members" in text and "host-b" in text


def test_a_host_that_dies_is_marked_and_the_other_goes_on(
    child_env: dict[str, str],
    postgres_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with driven_powercap(tmp_path / "sys") as fake:
        env = _env(child_env, postgres_db_url, fake)
        a = _host(env, "host-a", 12.0)
        assert a.stdout is not None
        assert a.stdout.readline().split()[0] == "host"  # host-a has joined
        b = _host(env, "host-b", 12.0, die_after_s=3.5)  # after its first flush (2 s)
        b.communicate(timeout=120)
        assert b.returncode == -signal.SIGKILL
        # Read where host-b's process lived (its pid tells it is gone at once; elsewhere
        # its heartbeat going stale, 30 s, would).
        monkeypatch.setenv("WATTWISE_HOST", "host-b")
        live = _read(postgres_db_url)
        assert a.poll() is None, "host-a should still be running"
        assert live.status is RunStatus.RUNNING  # host-a goes on
        statuses = {h.host: h.status for h in live.hosts}
        assert statuses == {"host-a": RunStatus.RUNNING, "host-b": RunStatus.INTERRUPTED}
        _, err = a.communicate(timeout=120)
        assert a.returncode == 0, err
    run = _read(postgres_db_url)
    assert run.status is RunStatus.INTERRUPTED and run.ended_at is not None
    assert {h.host: h.status for h in run.hosts} == {
        "host-a": RunStatus.COMPLETED,
        "host-b": RunStatus.INTERRUPTED,
    }
    b_part = next(h for h in run.hosts if h.host == "host-b")
    assert b_part.energy_j > 0  # what it wrote before it died is kept
    a_part = next(h for h in run.hosts if h.host == "host-a")
    assert run.energy_j == pytest.approx(a_part.energy_j + b_part.energy_j)
