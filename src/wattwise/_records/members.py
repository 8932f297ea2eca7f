"""Who takes part in a run: a member's identity (host, ranks, pid) and this host's name.

A run of a distributed job has **members**: every process that tracks a part of it (each
rank of a ``torchrun`` job, the ``wattwise run`` process that launched it). The identity
sits here, below tracking and store, because both use it: the tracker to join a run, the
store to tell whether a member's process is still alive on this host.
"""

from __future__ import annotations

import enum
import os
import socket
from dataclasses import dataclass
from typing import Final

__all__ = ["HOST_ENV_VAR", "Member", "MemberRole", "host_identity"]

#: Environment variable overriding this host's name in the store (two "hosts" on one
#: machine, or a container whose host name is not the node's).
HOST_ENV_VAR: Final = "WATTWISE_HOST"


def host_identity() -> str:
    """This host's name as runs record it: ``$WATTWISE_HOST``, else the host name."""
    return os.environ.get(HOST_ENV_VAR) or socket.gethostname()


class MemberRole(enum.StrEnum):
    """What a member measures.

    ``host``: the first member of its host to join reads the machine's meters for the
    whole host (in the scope it was given); its energy is the host's and counts into the
    run's total. ``rank``: every other member records its own process share only (process
    scope), kept beside the host's figure and never added to the total.
    """

    HOST = "host"
    RANK = "rank"


@dataclass(frozen=True)
class Member:
    """The identity of one process taking part in a run.

    Attributes:
        host: the host's name (:func:`host_identity`).
        pid: the process id.
        rank: the global rank (``RANK``), or None outside a distributed job.
        local_rank: the rank on this host (``LOCAL_RANK``), or None.
        world_size: how many ranks the job has (``WORLD_SIZE``), or None.
    """

    host: str
    pid: int
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None

    def label(self) -> str:
        """``rank 2/4 (local 0) on host-a, pid 123`` or ``pid 123 on host-a``."""
        if self.rank is None:
            return f"pid {self.pid} on {self.host}"
        size = f"/{self.world_size}" if self.world_size is not None else ""
        local = f" (local {self.local_rank})" if self.local_rank is not None else ""
        return f"rank {self.rank}{size}{local} on {self.host}, pid {self.pid}"
