"""``wattwise carbon embodied RUN_ID``: a stored run's embodied estimate, with its settings.

Registered on the ``carbon`` group (imported by :mod:`wattwise.cli` for that). Read-only:
it opens the store read-only and writes nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError
from wattwise.carbon import (
    DEFAULT_LIFETIME_RANGE_YEARS,
    DEFAULT_LIFETIME_YEARS,
    EMBODIED_LABEL,
    embodied_for_run,
)
from wattwise.cli._carbon import carbon_app
from wattwise.cli._common import console, print_json
from wattwise.store import RunStore

__all__ = ["embodied_command", "parse_lifetime_range"]

_DEFAULT_RANGE = "{:g}-{:g}".format(*DEFAULT_LIFETIME_RANGE_YEARS)


def parse_lifetime_range(text: str) -> tuple[float, float]:
    """``"3-6"`` -> ``(3.0, 6.0)`` years.

    Raises:
        ConfigError: not two numbers joined by ``-``.
    """
    low, sep, high = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return float(low), float(high)
    except ValueError:
        raise ConfigError(
            f"lifetime range {text!r} is not LOW-HIGH in years (e.g. {_DEFAULT_RANGE})"
        ) from None


@carbon_app.command("embodied")
def embodied_command(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    lifetime_years: Annotated[
        float, typer.Option(help="Hardware lifetime of the central figure, in years.")
    ] = DEFAULT_LIFETIME_YEARS,
    lifetime_range: Annotated[
        str | None,
        typer.Option(
            help=f"Shortest-longest lifetime of the range, in years (default {_DEFAULT_RANGE}, "
            "widened to contain --lifetime-years)."
        ),
    ] = None,
    use_ratio: Annotated[
        float, typer.Option(help="Share of its lifetime the hardware is in use, (0, 1].")
    ] = 1.0,
    cpus: Annotated[
        float | None,
        typer.Option(
            help="Logical CPUs the run was given (default: as recorded with the run; all of "
            "the machine's for a run recorded before wattwise kept that)."
        ),
    ] = None,
    gpus: Annotated[
        int | None, typer.Option(help="GPUs the run used (default: its GPU components).")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A run's share of its hardware's manufacturing emissions: an estimate with its range,
    never added into the run's operational emissions."""
    options: dict[str, object] = {"lifetime_years": lifetime_years, "use_ratio": use_ratio}
    if lifetime_range is not None:
        options["lifetime_range_years"] = parse_lifetime_range(lifetime_range)
    if cpus is not None:
        options["cpus"] = cpus
    if gpus is not None:
        options["gpus"] = gpus
    st = RunStore.open(store, read_only=True)
    try:
        result = st.get_run(run_id)
    finally:
        st.close()
    figures = embodied_for_run(result, **options)
    carbon = result.carbon
    if as_json:
        print_json(
            {
                "run_id": result.run_id,
                "emissions_g": carbon.emissions_g if carbon else None,
                "embodied": figures.to_dict(),
            }
        )
        return
    console.print(f"run {escape(result.name)} ({result.run_id[:12]})", highlight=False)
    console.print(f"  {figures.summary()}", markup=False, highlight=False)
    if carbon is not None:
        console.print(
            f"  operational {carbon.emissions_g:.3g} gCO2e ({carbon.zone}), shown apart",
            markup=False,
            highlight=False,
        )
    table = Table("component", "units", "share", "gCO2e", "range", "factor", "source")
    for c in figures.components:
        table.add_row(
            c.component,
            f"{c.units:g} {c.factor.per}",
            f"{c.share:.0%}",
            f"{c.embodied_g:.3g}",
            f"{c.low_g:.3g}-{c.high_g:.3g}",
            f"{c.factor.central_kg:g} kg/{c.factor.per}",
            escape(c.factor.url or c.factor.source),
        )
    console.print(table)
    for note in figures.notes:
        console.print(f"  note: {note}", markup=False, highlight=False)
    console.print(f"  ({EMBODIED_LABEL})", markup=False, highlight=False)
