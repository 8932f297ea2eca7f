"""Report sections for runs: summary with provenance, emissions, timeline, phases, gaps."""

from __future__ import annotations

import re

from wattwise._records import RunAllocation, RunResult
from wattwise._units import format_energy as fmt_j
from wattwise.carbon import embodied_for_run, equivalents
from wattwise.report import _plots
from wattwise.report._document import Figure, Section, Table
from wattwise.report._embodied import embodied_section

__all__ = ["compare_table", "run_sections"]

_EPOCH = re.compile(r"^epoch-(\d+)$")


def _summary(result: RunResult) -> Section:
    paragraphs = [
        f"{result.status.value.capitalize()} run of {result.duration_s:.1f} s, "
        f"{result.scope.value} scope. Energy {fmt_j(result.energy_j)} ± "
        f"{fmt_j(result.uncertainty_j)}, {result.provenance}: "
        + "; ".join(f"{c.name} {c.source.label()}" for c in result.components if c.counted)
        + "."
    ]
    if result.net_energy_j is not None and result.baseline_power_w is not None:
        net_pm = result.net_uncertainty_j
        paragraphs.append(
            f"Net of an idle baseline of {result.baseline_power_w:.2f} W measured before the "
            f"run: {fmt_j(result.net_energy_j)}"
            + (f" ± {fmt_j(net_pm)}" if net_pm is not None else "")
            + " (idle power subtracted only over the time whose energy is known)."
        )
    paragraphs.append(
        "Allocation (what the run was given, recorded at its start): "
        + (
            result.allocation.describe()
            if result.allocation is not None
            else RunAllocation.NOT_RECORDED
        )
        + "."
    )
    if result.energy_lost_s > 0:
        paragraphs.append(
            f"Sensors could not be read for {result.energy_lost_s:.1f} s in all: the energy is "
            "a lower bound (gaps are listed below, never filled with zero)."
        )
    rows = []
    for c in result.components:
        note = "" if c.counted else "part of another component, not added"
        if c.gap_s > 0:
            note = (note + "; " if note else "") + f"{c.gap_s:.1f} s unreadable"
        rows.append(
            (
                c.name,
                c.source.label(),
                fmt_j(c.energy_j),
                fmt_j(c.uncertainty_j),
                c.source.detail,
                note,
            )
        )
    tables = [Table(("component", "source", "energy", "±", "how", "note"), tuple(rows))]
    if result.carbon is not None:
        carbon = result.carbon
        paragraphs.append(
            f"Emissions {carbon.emissions_g:.3f} gCO2e: zone {carbon.zone}, "
            f"{carbon.intensity_g_per_kwh:.0f} gCO2e/kWh ({carbon.intensity_source}), "
            f"PUE {carbon.pue:.2f}."
        )
        eq_rows = tuple(
            (e.label, f"{e.amount:.3g} {e.unit}", e.source) for e in equivalents(carbon.emissions_g)
        )
        if eq_rows:
            tables.append(
                Table(
                    ("equivalent", "amount", "source"),
                    eq_rows,
                    "Everyday equivalents of the emissions above.",
                )
            )
    return Section("Summary", tuple(paragraphs), tuple(tables))


def _members(result: RunResult) -> Section:
    """The hosts (each counted once) and the processes that joined the run."""
    hosts = tuple(
        (
            h.host,
            h.status.value,
            fmt_j(h.energy_j),
            fmt_j(h.uncertainty_j),
            str(h.ranks),
            fmt_j(h.ranks_energy_j) if h.ranks else "-",
        )
        for h in result.hosts
    )
    members = tuple(
        (
            f"rank {m.rank}" if m.rank is not None else "no rank",
            m.host,
            str(m.pid),
            m.role.value,
            m.scope.value,
            m.status.value,
            f"{m.offset_s:.2f} s",
            f"{m.duration_s:.2f} s",
            fmt_j(m.energy_j),
        )
        for m in result.members
    )
    return Section(
        "Hosts and members",
        (
            f"{len(result.members)} processes on {len(result.hosts)} host(s) took part. On "
            "each host one member read the machine's meters: its energy is the host's, "
            "counted once in the total; the other members' figures are their process shares "
            "of that host, kept beside it and never added. Start times are on the run's "
            "timeline, from the store server's clock.",
        ),
        (
            Table(("host", "status", "energy", "±", "ranks", "ranks' process shares"), hosts),
            Table(
                ("member", "host", "pid", "role", "scope", "status", "from", "duration", "energy"),
                members,
            ),
        ),
    )


def run_sections(result: RunResult) -> tuple[Section, ...]:
    """The sections describing one run (its samples must be loaded for the timeline)."""
    carbon_g = result.carbon.emissions_g if result.carbon else None
    sections = [_summary(result)]
    if result.members:
        sections.append(_members(result))
    sections.append(embodied_section(embodied_for_run(result), carbon_g))
    if result.samples:
        sections.append(
            Section(
                "Power timeline",
                (
                    "Mean power of each component over each sampling interval; dotted lines are "
                    "sub-components not added to the total; shaded spans are the top-level "
                    "phases; holes are sensor gaps.",
                ),
                figures=(
                    Figure(
                        _plots.power_timeline(result), f"Power over time ({result.provenance})."
                    ),
                ),
            )
        )
    if result.windows:
        rows = tuple(
            (
                w.path,
                f"{w.duration_s:.2f} s",
                fmt_j(w.energy_j),
                fmt_j(w.uncertainty_j),
                f"{w.energy_j / result.energy_j:.0%}" if result.energy_j > 0 else "–",
            )
            for w in result.windows
        )
        figures = []
        epochs = sorted((int(m.group(1)), w) for w in result.windows if (m := _EPOCH.match(w.path)))
        if len(epochs) >= 2:
            figures.append(
                Figure(
                    _plots.line_chart(
                        [
                            (
                                "energy per epoch",
                                [e for e, _ in epochs],
                                [w.energy_j for _, w in epochs],
                            )
                        ],
                        xlabel="epoch",
                        ylabel="energy (J)",
                    ),
                    f"Energy of each epoch ({result.provenance}).",
                )
            )
        top = [w for w in result.windows if "/" not in w.path]
        if 1 < len(top) <= 40 and not figures:
            figures.append(
                Figure(
                    _plots.bar_chart(
                        [w.path for w in top],
                        [w.energy_j for w in top],
                        ylabel="energy (J)",
                        errors=[w.uncertainty_j for w in top],
                    ),
                    f"Energy of each top-level phase ({result.provenance}).",
                )
            )
        sections.append(
            Section(
                "Phases",
                (),
                (Table(("window", "duration", "energy", "±", "share"), rows),),
                tuple(figures),
            )
        )
    if result.gaps:
        rows = tuple(
            (
                g.component,
                f"{g.start_s:.2f} s",
                f"{g.end_s:.2f} s",
                g.note,
                "recovered from the counter" if g.recovered else "energy lost",
            )
            for g in result.gaps
        )
        sections.append(
            Section(
                "Sensor gaps", (), (Table(("component", "from", "to", "what", "energy"), rows),)
            )
        )
    return tuple(sections)


def compare_table(results: list[RunResult]) -> Table:
    """Runs side by side: energy, net energy, emissions, duration, sources."""
    rows = []
    for r in results:
        sources = ", ".join(sorted({c.source.label() for c in r.components if c.counted}))
        rows.append(
            (
                r.run_id[:12],
                r.name,
                fmt_j(r.energy_j),
                fmt_j(r.uncertainty_j),
                fmt_j(r.net_energy_j)
                + (f" ± {fmt_j(r.net_uncertainty_j)}" if r.net_uncertainty_j is not None else ""),
                f"{r.carbon.emissions_g:.3f} g ({r.carbon.zone})" if r.carbon else "–",
                f"{r.duration_s:.1f} s",
                sources,
            )
        )
    return Table(
        ("run", "name", "energy", "±", "net", "emissions", "duration", "sources"), tuple(rows)
    )
