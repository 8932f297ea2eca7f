"""``wattwise carbon``: grid intensity of a zone or cloud region, the bundled zones, equivalents.

Mounted by the main app as ``app.add_typer(carbon_app, name="carbon")``.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import WattwiseError
from wattwise.carbon import (
    cloud_regions,
    dataset_credit,
    equivalents,
    grid_zones,
    live_location,
    resolve_location,
)
from wattwise.cli._common import console, err_console, fail, print_json

__all__ = ["carbon_app"]

carbon_app = typer.Typer(
    name="carbon",
    help="Grid carbon intensity: zones, cloud regions, live figures, equivalents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_YEAR_NOT_STATED = "n.d."


def _warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _credit_line() -> str:
    credit = dataset_credit()
    return f"Bundled data: {credit['dataset']} ({credit['authors']}), {credit['licence']}."


@carbon_app.command("intensity")
def intensity(
    zone: Annotated[
        str | None, typer.Option("--zone", help="Grid zone code or name (DE, US-CA, France).")
    ] = None,
    cloud: Annotated[
        str | None, typer.Option("--cloud", help="Cloud region PROVIDER:REGION (gcp:europe-west1).")
    ] = None,
    pue: Annotated[
        str | None, typer.Option("--pue", help="PUE to apply: a number >= 1, or 'datacenter'.")
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Ask Electricity Maps (token in $WATTWISE_ELECTRICITYMAPS_TOKEN); "
            "falls back to the bundled figure.",
        ),
    ] = False,
    timeout_s: Annotated[
        float, typer.Option("--timeout", help="Live request timeout, in s.", min=0.1)
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The grid carbon intensity of a zone or cloud region, with its source and year."""
    try:
        location = resolve_location(zone, cloud, pue=pue)
        if location.note:
            _warn(location.note)
        if live:
            with httpx.Client() as client:
                location = live_location(
                    location, client=client, timeout_s=timeout_s, on_warning=_warn
                )
    except WattwiseError as exc:
        fail(str(exc))
    if as_json:
        print_json(location.to_dict())
        return
    year = location.year if location.year is not None else _YEAR_NOT_STATED
    console.print(
        f"[bold]{escape(location.zone)}[/] {escape(location.name)}: "
        f"[bold]{location.intensity_g_per_kwh:g}[/] gCO2e/kWh ({location.kind}, {year})",
        highlight=False,
    )
    console.print(f"  source: {location.source}", highlight=False, soft_wrap=True, markup=False)
    where = f" ({location.cloud})" if location.cloud else ""
    console.print(
        f"  PUE {location.pue:g}{where}: {location.pue_source}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if location.kind == "bundled":
        console.print(
            f"  {_credit_line()}", style="dim", highlight=False, soft_wrap=True, markup=False
        )


@carbon_app.command("zones")
def zones(
    clouds: Annotated[
        bool, typer.Option("--clouds", help="List the cloud regions instead of the zones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The bundled grid zones (or cloud regions), each with its source and year."""
    if clouds:
        regions = cloud_regions()
        if as_json:
            print_json(
                [
                    {
                        "cloud": f"{r.provider}:{r.region}",
                        "zone": r.zone,
                        "pue": r.pue,
                        "pue_source": r.pue_source,
                        "pue_year": r.pue_year,
                        "location_source": r.location_source,
                        "note": r.note or None,
                    }
                    for r in regions
                ]
            )
            return
        table = Table("cloud", "zone", "PUE", "PUE year", "note", title="Cloud regions")
        for r in regions:
            year = str(r.pue_year) if r.pue_year else _YEAR_NOT_STATED
            table.add_row(
                escape(f"{r.provider}:{r.region}"),
                escape(r.zone),
                f"{r.pue:g}",
                year,
                escape(r.note),
            )
        console.print(table)
        console.print(_credit_line(), style="dim", highlight=False, soft_wrap=True, markup=False)
        return
    all_zones = list(grid_zones().values())
    if as_json:
        print_json(
            [
                {
                    "zone": z.zone,
                    "name": z.name,
                    "kind": z.kind,
                    "intensity_g_per_kwh": z.intensity_g_per_kwh,
                    "year": z.year,
                    "source": z.source,
                    "note": z.note or None,
                }
                for z in all_zones
            ]
        )
        return
    table = Table("zone", "name", "gCO2e/kWh", "year", "source", title="Grid zones")
    for z in all_zones:
        year = str(z.year) if z.year is not None else _YEAR_NOT_STATED
        table.add_row(
            escape(z.zone), escape(z.name), f"{z.intensity_g_per_kwh:g}", year, escape(z.source)
        )
    console.print(table)
    console.print(_credit_line(), style="dim", highlight=False, soft_wrap=True, markup=False)


@carbon_app.command("equivalents")
def equivalents_command(
    grams: Annotated[float, typer.Argument(help="A mass of CO2e, in g.", min=0.0)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A mass of CO2e as car kilometres, tree-months and flights."""
    try:
        items = equivalents(grams)
    except WattwiseError as exc:
        fail(str(exc))
    if as_json:
        print_json({"emissions_g": grams, "equivalents": [e.to_dict() for e in items]})
        return
    console.print(f"[bold]{grams:g}[/] gCO2e is about:", highlight=False)
    for item in items:
        year = item.year if item.year is not None else _YEAR_NOT_STATED
        console.print(
            f"  {item.amount:.3g} {escape(item.unit)} {escape(item.label)} "
            f"[dim]({item.g_per_unit:g} g each; {escape(item.source)}; {year})[/]",
            highlight=False,
            soft_wrap=True,
        )
