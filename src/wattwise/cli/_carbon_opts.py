"""The options that choose where a run's electricity comes from, shared by commands."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from wattwise.carbon import Location, live_location, resolve_location

__all__ = ["CloudOpt", "LiveOpt", "ZoneOpt", "resolve_run_location"]

ZoneOpt = Annotated[
    str | None,
    typer.Option(help="Grid zone for emissions, e.g. DE, US-CA (default: WATTWISE_ZONE/config)."),
]
CloudOpt = Annotated[
    str | None, typer.Option(help="Cloud region for emissions and PUE, e.g. gcp:europe-west1.")
]
LiveOpt = Annotated[
    bool,
    typer.Option(
        help="Ask Electricity Maps for the live intensity (token as for `wattwise carbon "
        "intensity --live`); falls back to the bundled figure."
    ),
]


def resolve_run_location(zone: str | None, cloud: str | None, *, live: bool) -> Location:
    """The bundled location for the flags (no network), or the live one with ``--live``."""
    location = resolve_location(zone, cloud)
    if not live:
        return location
    import logging

    log = logging.getLogger("wattwise")
    with httpx.Client() as client:
        return live_location(location, client=client, on_warning=log.warning)
