"""Whether a run stored as ``running`` is still being tracked.

Nothing marks a run whose process was killed (SIGKILL, power cut, OOM killer): its row
still says ``running``. The store derives the truth on every read instead of trusting it:

* the heartbeat is older than :data:`STALE_AFTER_S` -> interrupted (any host);
* the run was tracked on this host (:func:`~wattwise._records.host_identity`, which
  ``WATTWISE_HOST`` overrides) and its process is gone -> interrupted. Gone: no such pid, a
  zombie, or a pid reused by another process: one created after the run started or, for a
  member of a run, whose create time differs from the one it recorded (that time is the
  host's own clock, so a skewed clock elsewhere cannot fool it).

Otherwise it is running. Nothing is written back, so a late ``finish_run`` still wins.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Final

import psutil

from wattwise._records import RunStatus, host_identity

__all__ = ["STALE_AFTER_S", "derive_status", "process_alive"]

#: A running run whose last heartbeat is older than this (s) reads back as interrupted.
#: The sampler heartbeats at least every 2 s: 30 s is some 15 missed beats.
STALE_AFTER_S: Final = 30.0

# A process created this long (s) after the run started cannot be the run's process: its
# pid was reused. The slack covers create times rounded to clock ticks.
_PID_REUSE_SLACK_S: Final = 1.0


def derive_status(
    stored: RunStatus,
    *,
    host: str,
    pid: int | None,
    started_at: datetime,
    heartbeat_at: datetime,
    now: datetime,
    pid_created_s: float | None = None,
) -> RunStatus:
    """The status to show for a stored run (see the module docstring).

    Args:
        stored: the status in the store.
        host: the host the run was tracked on.
        pid: the tracking process, if known.
        started_at: when the run started (aware).
        heartbeat_at: the last sign of life (aware).
        now: the current time (aware).
        pid_created_s: the tracking process's create time it recorded (epoch s), if any.
    """
    if stored is not RunStatus.RUNNING:
        return stored
    if (now - heartbeat_at).total_seconds() > STALE_AFTER_S:
        return RunStatus.INTERRUPTED
    if (
        process_alive(host=host, pid=pid, started_at=started_at, pid_created_s=pid_created_s)
        is False
    ):
        return RunStatus.INTERRUPTED
    return RunStatus.RUNNING


def process_alive(
    *, host: str, pid: int | None, started_at: datetime, pid_created_s: float | None = None
) -> bool | None:
    """Whether a run's tracking process still lives, by its pid (see the module docstring).

    Returns:
        True or False on the host that tracked it; None where that cannot be told here: it
        was tracked on another host, or its pid is not known.
    """
    if pid is None or host != host_identity():
        return None
    return _alive(pid, started_at, pid_created_s)


def _alive(pid: int, started_at: datetime, pid_created_s: float | None) -> bool:
    if pid == os.getpid():
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return False
    except psutil.AccessDenied:
        return True  # it exists; we just may not look at it
    if pid_created_s is not None:
        return abs(created - pid_created_s) <= _PID_REUSE_SLACK_S
    return created <= started_at.timestamp() + _PID_REUSE_SLACK_S
