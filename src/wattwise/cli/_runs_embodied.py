"""The embodied estimate beside a run's operational emissions in ``wattwise runs show``."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from wattwise._records import RunResult
from wattwise.carbon import EmbodiedFigures, embodied_for_run

__all__ = ["embodied_json", "print_embodied"]


def embodied_json(result: RunResult) -> dict[str, Any]:
    """The run's JSON with an ``embodied`` object beside (never inside) its emissions."""
    return {**result.to_dict(), "embodied": embodied_for_run(result).to_dict()}


def embodied_line(figures: EmbodiedFigures) -> str:
    """The ``embodied`` line of a run's summary: the estimate, its range, what it is."""
    return (
        f"embodied ~{figures.embodied_g:.3g} gCO2e (estimate, range {figures.low_g:.3g}-"
        f"{figures.high_g:.3g}; hardware manufacturing share over {figures.lifetime_years:g} y, "
        f"{figures.lifetime_low_years:g}-{figures.lifetime_high_years:g} y): not included in "
        "the carbon figure above"
    )


def print_embodied(result: RunResult, console: Console) -> None:
    """Print the embodied line (plain text: nothing in it is markup)."""
    console.print(embodied_line(embodied_for_run(result)), markup=False, highlight=False)
