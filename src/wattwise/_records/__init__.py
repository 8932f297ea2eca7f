"""Records shared by the layers: frozen run records, their provenance and uncertainty arithmetic.

The bottom of the package with the meters (docs/architecture.md): tracking, store, carbon
and report import these; they import only the meters' component types. The public names
are re-exported by :mod:`wattwise.tracking`.
"""

from wattwise._records.provenance import Provenance
from wattwise._records.run import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise._records.uncertainty import combined_uncertainty, counted_totals, net_uncertainty

__all__ = [
    "CarbonFigures",
    "ComponentEnergy",
    "Gap",
    "Provenance",
    "RunResult",
    "RunStatus",
    "Sample",
    "Scope",
    "WindowResult",
    "combined_uncertainty",
    "counted_totals",
    "net_uncertainty",
]
