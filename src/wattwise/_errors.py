"""The exception tree of wattwise.

Every error wattwise raises on purpose derives from :class:`WattwiseError`, and its
message is one line saying what is wrong and what to do::

    WattwiseError
    ├── ConfigError              bad flag, bad value, unknown zone, malformed file
    │   └── DataFileError        a data file (CSV, trace, space) that cannot be parsed
    ├── MeterError               an energy source could not be used
    │   ├── MeterUnavailable     the sensor is absent on this machine
    │   └── MeterPermissionError the sensor exists but may not be read
    ├── StoreError               the run store
    │   ├── StoreUnreachable     cannot connect / open
    │   ├── StoreNotFound        no store there yet (a read-only open creates none)
    │   ├── StoreVersionError    schema of another wattwise version
    │   │   └── StoreNeedsUpgrade  an older one, opened read-only: `wattwise runs upgrade`
    │   └── RunNotFound          no run with that id
    └── ProviderError            a live data provider failed (HTTP, timeout, bad answer)

Vendor errors (NVML, SQLAlchemy, httpx) are translated into this tree at the edge where
they are raised, so callers never need to import a vendor's exception types.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataFileError",
    "MeterError",
    "MeterPermissionError",
    "MeterUnavailable",
    "ProviderError",
    "RunNotFound",
    "StoreError",
    "StoreNeedsUpgrade",
    "StoreNotFound",
    "StoreUnreachable",
    "StoreVersionError",
    "WattwiseError",
]


class WattwiseError(Exception):
    """Base of every error wattwise raises on purpose."""


class ConfigError(WattwiseError):
    """A flag, setting or input value is wrong."""


class DataFileError(ConfigError):
    """A data file cannot be parsed; the message names the file and line."""


class MeterError(WattwiseError):
    """An energy source could not be used."""


class MeterUnavailable(MeterError):
    """The sensor does not exist on this machine."""


class MeterPermissionError(MeterError):
    """The sensor exists but this process may not read it."""


class StoreError(WattwiseError):
    """The run store failed."""


class StoreUnreachable(StoreError):
    """The store cannot be opened or connected to."""


class StoreNotFound(StoreError):
    """A store opened read-only does not exist yet (nothing was recorded there)."""


class StoreVersionError(StoreError):
    """The store was written by a wattwise with another schema version."""


class StoreNeedsUpgrade(StoreVersionError):
    """A read-only open found a store of an older schema version: ``wattwise runs upgrade``
    (or any open for writing) upgrades it in place."""


class RunNotFound(StoreError):
    """No run has the given id."""


class ProviderError(WattwiseError):
    """A live data provider (HTTP API) failed."""
