"""Which run a process joins, and as which member: explicit, or from the environment.

A process joins a run (docs/run.md, "Many processes, one run") when it is given the run's
id (``Tracker(join=ID)``, ``track(join=ID)``), when ``WATTWISE_RUN_ID`` names one (what
``wattwise run`` sets for the command it launches, so a ``with wattwise.track()`` inside it
joins the outer run), or when it is a rank of a ``torchrun`` / ``torch.distributed`` job
(``RANK`` and ``WORLD_SIZE`` set): every rank then derives the same id from the job's
rendezvous (``TORCHELASTIC_RUN_ID``, else ``MASTER_ADDR:MASTER_PORT``, with
``SLURM_JOB_ID`` when there is one), so all of them join one run without talking to each
other. Its identity is ``(host, rank, local_rank, pid, world_size)``, from ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and :func:`~wattwise._records.host_identity`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, cast

import psutil

from wattwise._errors import ConfigError, WattwiseError
from wattwise._records import Member, MemberRole, RunAllocation, Scope, host_identity
from wattwise.meters._base import Component
from wattwise.tracking._sink import RunSink

__all__ = [
    "RUN_ENV_VAR",
    "JoinPlan",
    "Joined",
    "MemberSink",
    "Membership",
    "join_run",
    "member_from_env",
    "plan_join",
    "run_id_from_env",
    "try_join",
]

#: Environment variable naming the run a process joins (``wattwise run`` sets it).
RUN_ENV_VAR: Final = "WATTWISE_RUN_ID"

#: The longest run id the store keeps.
_MAX_RUN_ID: Final = 64


@dataclass(frozen=True)
class JoinPlan:
    """The run to join and who joins it.

    Attributes:
        run_id: the id of the run to join (created by the first member to join).
        member: this process's identity.
    """

    run_id: str
    member: Member


def _int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer: fix or unset it") from None


def member_from_env(environ: Mapping[str, str] | None = None) -> Member:
    """This process's identity: host, pid, and its ranks where the environment gives them."""
    env = os.environ if environ is None else environ
    return Member(
        host=host_identity(),
        pid=os.getpid(),
        rank=_int(env, "RANK"),
        local_rank=_int(env, "LOCAL_RANK"),
        world_size=_int(env, "WORLD_SIZE"),
    )


def run_id_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``$WATTWISE_RUN_ID``, else an id every rank of this distributed job derives alike,
    else None (not part of a distributed job)."""
    env = os.environ if environ is None else environ
    named = env.get(RUN_ENV_VAR, "").strip()
    if named:
        return named
    if env.get("RANK") is None or env.get("WORLD_SIZE") is None:
        return None
    elastic = env.get("TORCHELASTIC_RUN_ID", "")
    if elastic and elastic != "none":  # torchrun's default rendezvous id is the word none
        key = f"torchelastic:{elastic}"
    elif env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        key = f"master:{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    else:
        return None
    key += f":slurm:{env.get('SLURM_JOB_ID', '')}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def plan_join(join: str | bool | None, member: Member | None) -> JoinPlan | None:
    """What a tracker joins: ``join`` False: nothing; a string: that run; None or True:
    the run the environment names (see the module docstring), if any.

    Raises:
        ConfigError: a bad run id; ``join=True`` or a ``member`` with no run to join.
    """
    if join is False:
        return None
    run_id = join if isinstance(join, str) else run_id_from_env()
    if run_id is None:
        if join is True or member is not None:
            raise ConfigError(
                f"no run to join: pass join=RUN_ID or set {RUN_ENV_VAR} "
                f"(torchrun sets RANK, WORLD_SIZE and MASTER_ADDR/MASTER_PORT)"
            )
        return None
    if not run_id or len(run_id) > _MAX_RUN_ID or not run_id.isprintable() or " " in run_id:
        raise ConfigError(
            f"bad run id to join {run_id!r}: give 1 to {_MAX_RUN_ID} printable characters "
            f"without spaces"
        )
    return JoinPlan(run_id, member if member is not None else member_from_env())


class Joined(Protocol):
    """What the store decided for a joining member (``wattwise.store``'s ``Joined``)."""

    @property
    def run_id(self) -> str: ...

    @property
    def role(self) -> MemberRole: ...

    @property
    def offset_s(self) -> float: ...


class MemberSink(RunSink, Protocol):
    """A sink that runs with members can join (the run store)."""

    def join_run(
        self,
        *,
        group_id: str,
        run_id: str,
        name: str,
        scope: Scope,
        member: Member,
        pid_created_s: float | None,
        command: tuple[str, ...] | None,
        components: Sequence[Component],
        baseline_power_w: float | None,
        allocation: RunAllocation | None = None,
    ) -> Joined: ...


def join_run(
    sink: RunSink,
    plan: JoinPlan,
    *,
    run_id: str,
    name: str,
    scope: Scope,
    command: tuple[str, ...] | None,
    components: Sequence[Component],
    baseline_power_w: float | None,
    allocation: RunAllocation | None = None,
) -> Joined:
    """Join ``plan``'s run through ``sink``.

    Raises:
        WattwiseError: the sink cannot hold runs with members, or the store refused (the
            run has finished, say): the caller records a run of its own instead.
    """
    joiner = getattr(sink, "join_run", None)
    if joiner is None:
        raise WattwiseError(f"{type(sink).__name__} cannot record runs with members")
    try:
        created: float | None = psutil.Process(plan.member.pid).create_time()
    except psutil.Error:
        created = None
    joined: Joined = cast(MemberSink, sink).join_run(
        group_id=plan.run_id,
        run_id=run_id,
        name=name,
        scope=scope,
        member=plan.member,
        pid_created_s=created,
        command=command,
        components=components,
        baseline_power_w=baseline_power_w,
        allocation=allocation,
    )
    return joined


@dataclass(frozen=True)
class Membership:
    """What a tracker became by joining a run.

    Attributes:
        run_id: its own record in the store.
        of: the id of the run it joined.
        role: ``host`` or ``rank``.
        member: its identity.
    """

    run_id: str
    of: str
    role: MemberRole
    member: Member


def try_join(
    sink: RunSink,
    plan: JoinPlan,
    *,
    run_id: str,
    name: str,
    scope: Scope,
    command: tuple[str, ...] | None,
    components: Sequence[Component],
    baseline_power_w: float | None,
    warn: Callable[[str], None],
    allocation: RunAllocation | None = None,
) -> Membership | None:
    """Join ``plan``'s run through ``sink``; None (with a warning) when the join was
    refused (the run has finished, say): the caller then records a run of its own."""
    try:
        joined = join_run(
            sink,
            plan,
            run_id=run_id,
            name=name,
            scope=scope,
            command=command,
            components=components,
            baseline_power_w=baseline_power_w,
            allocation=allocation,
        )
    except WattwiseError as exc:
        warn(f"could not join run {plan.run_id} ({exc}): recording a run of its own")
        return None
    return Membership(joined.run_id, plan.run_id, joined.role, plan.member)
