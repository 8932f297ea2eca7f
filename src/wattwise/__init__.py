"""wattwise: measure, compare and cut the energy and carbon of deep learning, honestly."""

from wattwise import _wiring
from wattwise._errors import (
    ConfigError,
    DataFileError,
    MeterError,
    MeterPermissionError,
    MeterUnavailable,
    ProviderError,
    RunNotFound,
    StoreError,
    StoreNeedsUpgrade,
    StoreNotFound,
    StoreUnreachable,
    StoreVersionError,
    WattwiseError,
)
from wattwise._records import Provenance
from wattwise.meters._base import Method
from wattwise.tracking import (
    RunResult,
    RunStatus,
    Scope,
    Tracker,
    Window,
    current_tracker,
    last_run,
    track,
)

# Hand the tracker its default run store and emissions (tracking imports neither).
_wiring.install()

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataFileError",
    "MeterError",
    "MeterPermissionError",
    "MeterUnavailable",
    "Method",
    "Provenance",
    "ProviderError",
    "RunNotFound",
    "RunResult",
    "RunStatus",
    "Scope",
    "StoreError",
    "StoreNeedsUpgrade",
    "StoreNotFound",
    "StoreUnreachable",
    "StoreVersionError",
    "Tracker",
    "WattwiseError",
    "Window",
    "__version__",
    "current_tracker",
    "last_run",
    "track",
]
