"""The run records moved to :mod:`wattwise._records` (below tracking, so that the store and
carbon can import them without importing tracking). Their public names are
:mod:`wattwise.tracking`'s; this private alias keeps the tests' old imports working until
they move.
"""

from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)

__all__ = [
    "CarbonFigures",
    "ComponentEnergy",
    "Gap",
    "RunResult",
    "RunStatus",
    "Sample",
    "Scope",
    "WindowResult",
]
