"""A tracker joining a run with members (docs/run.md, "Many processes, one run").

What to join and the store's answer are ``_members.py``'s; this module holds what a tracker
does with them: join just before its start read (when it writes to a store and has a run to
join), and what it becomes by joining: a rank's scope is process (the host member reads this
host's meters), and its result names the member's host and pid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from wattwise._records import Member, MemberRole, RunResult, Scope
from wattwise.tracking._members import Membership, plan_join, try_join
from wattwise.tracking._sink import RunSink
from wattwise.tracking._tracker_store import RunOpening

__all__ = ["join_at_start", "member_result", "member_scope"]


def join_at_start(
    sink: RunSink | None,
    join: str | bool | None,
    member: Member | None,
    opening: RunOpening,
    warn: Callable[[str], None],
) -> Membership | None:
    """Join the run ``join`` (or the environment) names as ``member``; None: a run alone
    (no store, no run to join, or the join refused, which is warned about).

    Raises:
        ConfigError: a bad run id; ``join=True`` or a ``member`` with no run to join.
    """
    plan = plan_join(join, member) if sink is not None else None
    if sink is None or plan is None:
        return None
    return try_join(
        sink,
        plan,
        run_id=opening.run_id,
        name=opening.name,
        scope=opening.scope,
        command=opening.command,
        components=opening.components,
        baseline_power_w=opening.baseline_power_w,
        warn=warn,
        allocation=opening.allocation,
    )


def member_scope(joined: Membership, scope: Scope) -> Scope:
    """The scope a member measures in: process for a rank (another member reads this
    host's meters), else ``scope``."""
    return Scope.PROCESS if joined.role is MemberRole.RANK else scope


def member_result(result: RunResult, joined_as: Member | None) -> RunResult:
    """``result`` naming the member's host and pid (as is when the tracker ran alone)."""
    if joined_as is None:
        return result
    return replace(result, host=joined_as.host, pid=joined_as.pid)
