"""Records shared by the layers: the :class:`Record` base of every stored result, frozen run
records, their provenance and uncertainty arithmetic.

The bottom of the package with the meters (docs/architecture.md): tracking, store, carbon
and report import these; they import only the meters' component types. The public names
are re-exported by :mod:`wattwise.tracking`.
"""

from wattwise._records.allocation import RunAllocation
from wattwise._records.base import Record, RecordError, known_kinds, load_record
from wattwise._records.charts import BarData, ChartData, Charted, CurveData, FrontData
from wattwise._records.members import HOST_ENV_VAR, Member, MemberRole, host_identity
from wattwise._records.provenance import Provenance
from wattwise._records.run import (
    CarbonFigures,
    ComponentEnergy,
    Gap,
    HostPart,
    MemberResult,
    RunResult,
    RunStatus,
    Sample,
    Scope,
    WindowResult,
)
from wattwise._records.uncertainty import combined_uncertainty, counted_totals, net_uncertainty

__all__ = [
    "HOST_ENV_VAR",
    "BarData",
    "CarbonFigures",
    "ChartData",
    "Charted",
    "ComponentEnergy",
    "CurveData",
    "FrontData",
    "Gap",
    "HostPart",
    "Member",
    "MemberResult",
    "MemberRole",
    "Provenance",
    "Record",
    "RecordError",
    "RunAllocation",
    "RunResult",
    "RunStatus",
    "Sample",
    "Scope",
    "WindowResult",
    "combined_uncertainty",
    "counted_totals",
    "host_identity",
    "known_kinds",
    "load_record",
    "net_uncertainty",
]
