"""Rich rendering of a run's hosts and members (a run that several processes joined)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wattwise._records import RunResult
from wattwise._units import format_energy

__all__ = ["render_members"]


def render_members(result: RunResult, console: Console) -> None:
    """Print the hosts (energy counted once each) and the members of a run, if it has any,
    and the allocation of each member given other than the run's."""
    if not result.members:
        return
    hosts = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    hosts.add_column("host")
    hosts.add_column("status")
    hosts.add_column("energy", justify="right")
    hosts.add_column("±", justify="right")
    hosts.add_column("ranks", justify="right")
    hosts.add_column("ranks' process shares", justify="right")
    for h in result.hosts:
        hosts.add_row(
            escape(h.host),
            h.status.value,
            format_energy(h.energy_j),
            format_energy(h.uncertainty_j),
            str(h.ranks),
            format_energy(h.ranks_energy_j) if h.ranks else "-",
        )
    console.print(hosts)
    members = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    members.add_column("member")
    members.add_column("host")
    members.add_column("role")
    members.add_column("status")
    members.add_column("from", justify="right")
    members.add_column("duration", justify="right")
    members.add_column("energy", justify="right")
    members.add_column("counts")
    for m in result.members:
        who = f"rank {m.rank}" if m.rank is not None else "no rank"
        if m.local_rank is not None:
            who += f" (local {m.local_rank})"
        note = "in the total" if m.role.value == "host" else "process share, not added"
        members.add_row(
            escape(f"{who}, pid {m.pid}"),
            escape(m.host),
            m.role.value,
            m.status.value,
            f"{m.offset_s:.2f} s",
            f"{m.duration_s:.2f} s",
            format_energy(m.energy_j),
            note,
        )
    console.print(members)
    for m in result.members:  # a member given other than the run's (first host member's)
        if m.allocation is not None and m.allocation != result.allocation:
            who = f"rank {m.rank}" if m.rank is not None else f"pid {m.pid}"
            console.print(
                f"  allocation of {who} on {m.host}: {m.allocation.describe()}",
                highlight=False,
                markup=False,
            )
