"""The bundled carbon tables (built by ``scripts/build_carbon_tables.py``), as records.

Every record keeps its provenance: ``source`` (the original publisher), ``year`` (the data
year the source states, or None where it states none) and ``origin`` (the file and line
of the Green Algorithms data the row was built from, CC BY 4.0).
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from wattwise._errors import DataFileError

__all__ = [
    "CloudRegion",
    "EquivalentFactor",
    "GridZone",
    "PueDefault",
    "cloud_regions",
    "dataset_credit",
    "equivalent_factors",
    "grid_zones",
    "pue_defaults",
    "region_key",
]


@dataclass(frozen=True)
class GridZone:
    """Average grid carbon intensity of a country, region or the world.

    Attributes:
        zone: code (ISO 3166-1 alpha-2, ISO 3166-2 for regions, ``WORLD``).
        name: human name.
        continent: continent name.
        kind: ``world``, ``country`` or ``region``.
        intensity_g_per_kwh: grid intensity, in gCO2e/kWh.
        year: data year stated by the source, or None.
        source: the original publisher of the figure.
        note: what wattwise changed on the row, if anything.
        origin: file and line of the Green Algorithms data it came from.
    """

    zone: str
    name: str
    continent: str
    kind: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    note: str
    origin: str


@dataclass(frozen=True)
class CloudRegion:
    """A cloud region mapped to the grid zone it draws from and its data-centre PUE.

    Attributes:
        provider: ``gcp``, ``aws`` or ``azure``.
        region: the provider's region name (``europe-west1``, ``West Europe``).
        key: lookup key (lower case letters and digits: ``europewest1``, ``westeurope``).
        zone: grid zone code.
        pue: power usage effectiveness (ratio >= 1).
        pue_source: where the PUE comes from.
        pue_year: year of the PUE figure, or None.
        location_source: where the region's location comes from.
        note: what wattwise changed or filled in.
        origin: file and line the row was built from.
    """

    provider: str
    region: str
    key: str
    zone: str
    pue: float
    pue_source: str
    pue_year: int | None
    location_source: str
    note: str
    origin: str


@dataclass(frozen=True)
class PueDefault:
    """Default PUE of a provider's data centres, or of an unknown data centre.

    Attributes:
        provider: ``gcp``, ``aws``, ``azure``, ``ovhcloud``, ``oracle`` or ``unknown``.
        pue: ratio >= 1.
        source: where it comes from.
        year: year of the figure, or None.
        origin: file and line the row was built from.
    """

    provider: str
    pue: float
    source: str
    year: int | None
    origin: str


@dataclass(frozen=True)
class EquivalentFactor:
    """How many gCO2e one unit of an everyday activity emits (or a tree absorbs).

    Attributes:
        key: ``car_km``, ``tree_months``, ``flights_paris_london``...
        label: what one unit is, completing "N <unit> ...".
        unit: unit name.
        g_per_unit: gCO2e per unit.
        source: where the factor comes from.
        year: year of the figure, or None where the source states none.
        origin: file and line the row was built from.
    """

    key: str
    label: str
    unit: str
    g_per_unit: float
    source: str
    year: int | None
    origin: str


def region_key(name: str) -> str:
    """Lookup key of a cloud region: lower case, letters and digits only, no (notes)."""
    out = []
    depth = 0
    for ch in name.lower():
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0 and ch.isascii() and ch.isalnum():
            out.append(ch)
    return "".join(out)


def _read(name: str) -> str:
    return (resources.files("wattwise.carbon") / "data" / name).read_text(encoding="utf-8")


def _table(name: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(_read(name)))
    return [(i + 2, row) for i, row in enumerate(reader)]


def _year(text: str) -> int | None:
    return int(text) if text else None


def _parse(name: str, line: int, build: Any, row: dict[str, str]) -> Any:
    try:
        return build(row)
    except (KeyError, ValueError) as exc:
        raise DataFileError(f"bundled table {name}:{line} is malformed ({exc})") from None


@functools.cache
def grid_zones() -> Mapping[str, GridZone]:
    """All grid zones by code, the world default first."""

    def build(row: dict[str, str]) -> GridZone:
        return GridZone(
            zone=row["zone"],
            name=row["name"],
            continent=row["continent"],
            kind=row["kind"],
            intensity_g_per_kwh=float(row["intensity_g_per_kwh"]),
            year=_year(row["year"]),
            source=row["source"],
            note=row["note"],
            origin=row["origin"],
        )

    name = "grid_intensity.csv"
    zones = {z.zone: z for z in (_parse(name, i, build, r) for i, r in _table(name))}
    return MappingProxyType(zones)


@functools.cache
def cloud_regions() -> tuple[CloudRegion, ...]:
    """All cloud regions, sorted by provider and key."""

    def build(row: dict[str, str]) -> CloudRegion:
        return CloudRegion(
            provider=row["provider"],
            region=row["region"],
            key=row["key"],
            zone=row["zone"],
            pue=float(row["pue"]),
            pue_source=row["pue_source"],
            pue_year=_year(row["pue_year"]),
            location_source=row["location_source"],
            note=row["note"],
            origin=row["origin"],
        )

    name = "cloud_regions.csv"
    return tuple(_parse(name, i, build, r) for i, r in _table(name))


@functools.cache
def pue_defaults() -> Mapping[str, PueDefault]:
    """Default PUE by provider (``unknown``: a data centre of unknown efficiency)."""

    def build(row: dict[str, str]) -> PueDefault:
        return PueDefault(
            provider=row["provider"],
            pue=float(row["pue"]),
            source=row["source"],
            year=_year(row["year"]),
            origin=row["origin"],
        )

    name = "pue_defaults.csv"
    rows = (_parse(name, i, build, r) for i, r in _table(name))
    return MappingProxyType({p.provider: p for p in rows})


@functools.cache
def equivalent_factors() -> tuple[EquivalentFactor, ...]:
    """The everyday-equivalent factors, in display order."""

    def build(row: dict[str, str]) -> EquivalentFactor:
        return EquivalentFactor(
            key=row["key"],
            label=row["label"],
            unit=row["unit"],
            g_per_unit=float(row["g_per_unit"]),
            source=row["source"],
            year=_year(row["year"]),
            origin=row["origin"],
        )

    name = "equivalents.csv"
    return tuple(_parse(name, i, build, r) for i, r in _table(name))


@functools.cache
def dataset_credit() -> Mapping[str, Any]:
    """Credit and licence of the dataset the tables were built from (CC BY 4.0)."""
    data: dict[str, Any] = json.loads(_read("provenance.json"))
    return MappingProxyType(data)
