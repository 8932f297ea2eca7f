"""The report's section on embodied emissions: beside the operational ones, never in them."""

from __future__ import annotations

from wattwise.carbon import EmbodiedFigures
from wattwise.report._document import Section, Table

__all__ = ["embodied_section"]


def _g(value: float) -> str:
    return f"{value:.3g}"


def embodied_section(figures: EmbodiedFigures, operational_g: float | None = None) -> Section:
    """A section stating the embodied estimate, its range, its method and its sources.

    Args:
        figures: the estimate (:func:`wattwise.carbon.embodied_for_run` / ``_for_runs``).
        operational_g: the operational emissions it is shown beside, in gCO2e, or None
            where they were not computed.
    """
    beside = (
        f"It is shown beside the operational emissions ({operational_g:.3g} gCO2e) and is "
        "not included in them."
        if operational_g is not None
        else "It is not part of any operational emissions figure."
    )
    paragraphs = [
        f"Embodied emissions, estimated: ~{_g(figures.embodied_g)} gCO2e (range "
        f"{_g(figures.low_g)}-{_g(figures.high_g)} gCO2e): the share of the hardware's "
        f"manufacturing footprint for {figures.duration_s:.1f} s of use, spread linearly over "
        f"a {figures.lifetime_years:g}-year lifetime (range {figures.lifetime_low_years:g}-"
        f"{figures.lifetime_high_years:g} years) at a use ratio of {figures.use_ratio:g}. "
        + beside,
        f"Method: {figures.method}. The range takes each factor's low figure over the longest "
        "lifetime and its high figure over the shortest.",
    ]
    if figures.notes:
        paragraphs.append("Assumptions: " + "; ".join(figures.notes) + ".")
    rows = tuple(
        (
            c.component,
            f"{c.units:g} {c.factor.per}",
            f"{c.share:.0%}",
            _g(c.embodied_g),
            f"{_g(c.low_g)}-{_g(c.high_g)}",
            f"{c.factor.central_kg:g} kgCO2e/{c.factor.per}: {c.factor.source}",
        )
        for c in figures.components
    )
    tables = (
        (
            Table(
                ("component", "units", "share", "gCO2e", "range", "factor and source"),
                rows,
                "Embodied estimate per component (not measured: from published factors).",
            ),
        )
        if rows
        else ()
    )
    if not rows and figures.sources:
        paragraphs.append("Sources: " + "; ".join(figures.sources) + ".")
    return Section("Embodied emissions (estimate)", tuple(paragraphs), tables)
