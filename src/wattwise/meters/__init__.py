"""Energy sources: the meter contract, RAPL, NVML, the estimate, replay, and detection.

Detection probes meters in a fixed order (see :func:`detect_meters`)."""

from wattwise.meters._base import (
    Component,
    ComponentKind,
    Meter,
    Method,
    Probe,
    Reading,
    Source,
)

__all__ = [
    "Component",
    "ComponentKind",
    "Meter",
    "Method",
    "Probe",
    "Reading",
    "Source",
]
