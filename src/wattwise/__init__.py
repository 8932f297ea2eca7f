"""wattwise: measure, compare and cut the energy and carbon of deep learning, honestly."""

from wattwise._errors import (
    ConfigError,
    DataFileError,
    MeterError,
    MeterPermissionError,
    MeterUnavailable,
    ProviderError,
    RunNotFound,
    StoreError,
    StoreUnreachable,
    StoreVersionError,
    WattwiseError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataFileError",
    "MeterError",
    "MeterPermissionError",
    "MeterUnavailable",
    "ProviderError",
    "RunNotFound",
    "StoreError",
    "StoreUnreachable",
    "StoreVersionError",
    "WattwiseError",
    "__version__",
]
