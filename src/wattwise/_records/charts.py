"""What a result wants plotted, in neutral types the report draws.

The report sits below the levers (docs/architecture.md), so it cannot know their result
types; a result that has plots says so by implementing :class:`Charted`, and the report
draws each chart by its type (:class:`BarData`, :class:`FrontData`, :class:`CurveData`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["BarData", "ChartData", "Charted", "CurveData", "FrontData"]


@dataclass(frozen=True)
class BarData:
    """One bar per label.

    Attributes:
        labels: the bars' labels.
        values: their heights, in the unit ``ylabel`` names.
        ylabel: the value axis, with its unit.
        caption: what the chart shows.
    """

    labels: tuple[str, ...]
    values: tuple[float, ...]
    ylabel: str
    caption: str


@dataclass(frozen=True)
class FrontData:
    """Energy against accuracy per label; the report joins the Pareto front (less energy,
    more accuracy).

    Attributes:
        labels: the points' labels.
        energies: their energy, in the unit ``xlabel`` names.
        accuracies: their accuracy, in the unit ``ylabel`` names.
        xlabel: the energy axis.
        ylabel: the accuracy axis.
        caption: what the chart shows.
    """

    labels: tuple[str, ...]
    energies: tuple[float, ...]
    accuracies: tuple[float, ...]
    xlabel: str
    ylabel: str
    caption: str


@dataclass(frozen=True)
class CurveData:
    """One step curve per label (a value that holds until the next point), with an
    optional horizontal target line: anytime curves of searches.

    Attributes:
        labels: the curves' labels.
        xs: each curve's x values, in the unit ``xlabel`` names (ascending).
        ys: each curve's y values, one per x.
        xlabel: the x axis, with its unit.
        ylabel: the y axis, with its unit.
        caption: what the chart shows.
        target: a y value drawn as a line across the chart (None: no line).
    """

    labels: tuple[str, ...]
    xs: tuple[tuple[float, ...], ...]
    ys: tuple[tuple[float, ...], ...]
    xlabel: str
    ylabel: str
    caption: str
    target: float | None = None


ChartData = BarData | FrontData | CurveData


@runtime_checkable
class Charted(Protocol):
    """A result with plots for its report."""

    def charts(self) -> tuple[ChartData, ...]:
        """The charts to draw, in order."""
        ...
