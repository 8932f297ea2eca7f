"""Helpers of the distributed tests: a fake powercap driven at constant power, the ranks of
benchmarks/ddp_job.py started by hand, and a reference tracker's energy over an interval."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from wattwise._records import RunResult
from wattwise.testing import FakePowercap

__all__ = ["JOB", "driven_powercap", "energy_between", "free_port", "start_ranks", "wait_all"]

JOB = Path(__file__).resolve().parents[1] / "benchmarks" / "ddp_job.py"

#: The constant power of the fake package and its DRAM, in W.
PACKAGE_W = 40.0
DRAM_W = 6.0


@contextmanager
def driven_powercap(base: Path) -> Iterator[FakePowercap]:
    """A one-socket powercap tree (package + dram) whose counters move at constant power."""
    fake = FakePowercap(base)
    package = fake.add_socket(core=False, dram=True)
    with fake.drive({package: PACKAGE_W, f"{package}:0": DRAM_W}):
        yield fake


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_ranks(
    env: dict[str, str], world_size: int, *args: str, host: str | None = None
) -> list[subprocess.Popen[str]]:
    """Every rank of one job on this machine, as torchrun would start them."""
    port = free_port()
    procs = []
    for rank in range(world_size):
        rank_env = {
            **env,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        if host is not None:
            rank_env["WATTWISE_HOST"] = host
        procs.append(
            subprocess.Popen(
                [sys.executable, str(JOB), *args],
                env=rank_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def wait_all(
    procs: Sequence[subprocess.Popen[str]], timeout: float = 600
) -> list[tuple[int, dict[str, Any] | None, str]]:
    """Each rank's exit status, its JSON line (None if it printed none) and its stderr."""
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        out.append((p.returncode, json.loads(lines[-1]) if lines else None, stderr))
    return out


def energy_between(ref: RunResult, start: datetime, end: datetime) -> float:
    """The counted energy of the reference run's samples inside ``[start, end]`` (wall
    time), each sample's share pro rata to its overlap."""
    counted = {c.name for c in ref.components if c.counted}
    total = 0.0
    for s in ref.samples:
        if s.component not in counted or s.energy_j is None or s.t_end_s <= s.t_start_s:
            continue
        a = ref.started_at + timedelta(seconds=s.t_start_s)
        b = ref.started_at + timedelta(seconds=s.t_end_s)
        overlap = (min(b, end) - max(a, start)).total_seconds()
        if overlap > 0:
            total += s.energy_j * overlap / (b - a).total_seconds()
    return total
