"""Build wattwise's bundled carbon tables from the Green Algorithms data.

Reads the Green Algorithms calculator data (Lannelongue, Grealey & Inouye 2021, CC BY 4.0;
``data/latest`` at commit 30df2fe) kept in ``../shared/data/carbon`` and writes the
project's own tables into ``src/wattwise/carbon/data/``:

* ``grid_intensity.csv``  one row per grid zone (world, countries, regions);
* ``cloud_regions.csv``   GCP, Azure and AWS regions mapped to a grid zone and a PUE;
* ``pue_defaults.csv``    default PUE per provider and for an unknown data centre;
* ``equivalents.csv``     everyday equivalents of a mass of CO2e;
* ``provenance.json``     the dataset, its licence and credit.

Every row keeps its provenance: the original publisher and data year, and the file and
line of the Green Algorithms data it came from (or, for the AWS rows, that the mapping is
wattwise's own). The output is deterministic: running the script again on the same input
reproduces the tables byte for byte (a test checks that).

Usage::

    python scripts/build_carbon_tables.py [--source DIR] [--out DIR] [--check]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "carbon"
DEFAULT_OUT = ROOT / "src" / "wattwise" / "carbon" / "data"

DATASET = "Green Algorithms data/latest@30df2fe"
CREDIT = {
    "dataset": "Green Algorithms calculator data (data/latest)",
    "version": "commit 30df2fe (2025-02-05)",
    "authors": "Loïc Lannelongue, Jason Grealey, Michael Inouye",
    "reference": (
        "Lannelongue, Grealey & Inouye, 'Green Algorithms: Quantifying the Carbon "
        "Footprint of Computation', Advanced Science 8(12), 2021, doi:10.1002/advs.202100707"
    ),
    "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    "changes": (
        "wattwise selected rows and columns, parsed the data year of each row, renamed "
        "non-ISO codes where an ISO 3166-2 code exists, fixed obvious typos, filled missing "
        "cloud PUE with the provider default and added an AWS region mapping; every "
        "change is noted on its row."
    ),
}

# Green Algorithms codes that have an ISO 3166-2 code of their own.
ISO_RENAMES = {"CA-MT": "CA-MB"}  # Manitoba is CA-MB in ISO 3166-2:CA
NAME_FIXES = {"Mississip": "Mississippi"}
AZURE_NAME_FIXES = {"Germany Northeastt (Sovereign)": "Germany Northeast (Sovereign)"}

# AWS is not in the Green Algorithms cloud file. Region code -> (public region name,
# grid zone of its location). Only regions whose location has a row in the grid table.
AWS_REGIONS: tuple[tuple[str, str, str], ...] = (
    ("us-east-1", "US East (N. Virginia)", "US-VA"),
    ("us-east-2", "US East (Ohio)", "US-OH"),
    ("us-west-1", "US West (N. California)", "US-CA"),
    ("us-west-2", "US West (Oregon)", "US-OR"),
    ("ca-central-1", "Canada (Central), Montreal", "CA-QC"),
    ("sa-east-1", "South America (Sao Paulo)", "BR"),
    ("eu-west-1", "Europe (Ireland)", "IE"),
    ("eu-west-2", "Europe (London)", "GB"),
    ("eu-west-3", "Europe (Paris)", "FR"),
    ("eu-central-1", "Europe (Frankfurt)", "DE"),
    ("eu-north-1", "Europe (Stockholm)", "SE"),
    ("eu-south-1", "Europe (Milan)", "IT"),
    ("af-south-1", "Africa (Cape Town)", "ZA"),
    ("ap-east-1", "Asia Pacific (Hong Kong)", "CN-HK"),
    ("ap-south-1", "Asia Pacific (Mumbai)", "IN"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)", "JP"),
    ("ap-northeast-2", "Asia Pacific (Seoul)", "KR"),
    ("ap-northeast-3", "Asia Pacific (Osaka)", "JP"),
    ("ap-southeast-1", "Asia Pacific (Singapore)", "SG"),
    ("ap-southeast-2", "Asia Pacific (Sydney)", "AU-NSW"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)", "ID"),
)
AWS_LOCATION_SOURCE = "AWS public region names; region-to-zone mapping by wattwise"

# Everyday equivalents taken from referenceValues.csv: variable -> (key, label, unit).
EQUIVALENTS = (
    ("passengerCar_EU_perkm", "car_km", "driven by an average European passenger car", "km"),
    ("tree_month", "tree_months", "of CO2 uptake by one mature tree", "tree-months"),
    (
        "flight_PAR-LON",
        "flights_paris_london",
        "of one passenger's Paris-London flight",
        "flights",
    ),
    (
        "flight_NY-SF",
        "flights_new_york_san_francisco",
        "of one passenger's New York-San Francisco flight",
        "flights",
    ),
)
# Data years that the reference rows state (the Green Algorithms text names the source
# documents; only the car figure names a year: UK conversion factors 2019).
EQUIVALENT_YEARS = {"passengerCar_EU_perkm": 2019}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a Green Algorithms CSV (units line, then header) with their file line."""
    with path.open(encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines()
    reader = csv.DictReader(lines[1:])
    for index, row in enumerate(reader):
        yield index + 3, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _origin(path: Path, line: int) -> str:
    return f"{DATASET} {path.name}:{line}"


def _number(text: str) -> str:
    """A figure written the same way every time (shortest round-trip float)."""
    return repr(float(text))


def data_year(*texts: str) -> int | None:
    """The data year stated in a Green Algorithms source / comment text, or None.

    Recognises "data from 2020", "Data from April 2022", "based on 2019 data" and
    "using 2019/20 data" (a split year counts as its later year).
    """
    text = " ".join(texts)
    patterns = (
        r"data from (?:[A-Z][a-z]+ )?(\d{4})",
        r"based on (\d{4}) data",
    )
    for pattern in patterns:
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            return int(match.group(1))
    match = re.search(r"using (\d{4})/(\d{2}) data", text)
    if match:
        return int(match.group(1)[:2] + match.group(2))
    return None


def _year_in(text: str) -> int | None:
    match = re.search(r"\b(20\d{2})\b", text)
    return int(match.group(1)) if match else None


def _accessed_year(text: str) -> int | None:
    match = re.search(r"\(\d{2}/\d{2}/(\d{4})\)", text)
    return int(match.group(1)) if match else None


def region_key(name: str) -> str:
    """Lookup key of a cloud region: lower case, letters and digits only, no (notes)."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"\(.*?\)", "", name).lower())


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def build_grid(source: Path) -> tuple[list[list[str]], set[str]]:
    path = source / "CI_aggregated.csv"
    out: list[list[str]] = []
    zones: set[str] = set()
    for line, row in _rows(path):
        code = row["location"]
        notes: list[str] = []
        if code in ISO_RENAMES:
            notes.append(f"code {code} of the source renamed to ISO 3166-2 {ISO_RENAMES[code]}")
            code = ISO_RENAMES[code]
        region = row["regionName"]
        if region in NAME_FIXES:
            notes.append(f"name '{region}' corrected")
            region = NAME_FIXES[region]
        kind = row["Type"].lower()
        name = row["countryName"] if region == "Any" else f"{region} ({row['countryName']})"
        if kind == "world":
            name = "World"
        year = data_year(row["source"], row["comments"])
        if year is None:
            notes.append("the source states no data year")
        if code in zones:
            raise SystemExit(f"duplicate zone {code} at {path.name}:{line}")
        zones.add(code)
        out.append(
            [
                code,
                name,
                row["continentName"],
                kind,
                _number(row["carbonIntensity"]),
                "" if year is None else str(year),
                row["source"],
                "; ".join(notes),
                _origin(path, line),
            ]
        )
    out.sort(key=lambda r: (r[3] != "world", r[0]))
    return out, zones


def build_pue_defaults(source: Path) -> tuple[list[list[str]], dict[str, list[str]]]:
    path = source / "defaults_PUE.csv"
    out: list[list[str]] = []
    by_provider: dict[str, list[str]] = {}
    for line, row in _rows(path):
        provider = row["provider"].lower()
        year = _year_in(row["source"])
        text = re.sub(r"^\d{4}\s+", "", row["source"])
        record = [
            provider,
            _number(row["PUE"]),
            text,
            "" if year is None else str(year),
            _origin(path, line),
        ]
        out.append(record)
        by_provider[provider] = record
    out.sort(key=lambda r: r[0])
    return out, by_provider


def build_clouds(
    source: Path, zones: set[str], pue_defaults: dict[str, list[str]]
) -> tuple[list[list[str]], list[str]]:
    path = source / "cloudProviders_datacenters.csv"
    out: list[list[str]] = []
    skipped: list[str] = []
    for line, row in _rows(path):
        provider = row["provider"].lower()
        if provider not in {"gcp", "azure"}:
            continue
        zone = ISO_RENAMES.get(row["location"], row["location"])
        name = row["Name"]
        notes: list[str] = []
        if provider == "azure" and name in AZURE_NAME_FIXES:
            notes.append(f"name '{name}' corrected")
            name = AZURE_NAME_FIXES[name]
        if zone not in zones:
            skipped.append(f"{provider}:{name} ({path.name}:{line}: no grid zone)")
            continue
        if row["PUE"]:
            pue = _number(row["PUE"])
            pue_source = re.sub(r"\s*\(\d{2}/\d{2}/\d{4}\)$", "", row["source_PUE"])
            pue_year = _accessed_year(row["source_PUE"])
            notes.append("PUE of this data centre")
        else:
            default = pue_defaults[provider]
            pue, pue_source = default[1], default[2]
            pue_year = int(default[3]) if default[3] else None
            notes.append(f"PUE: {provider} default")
        location_source = re.sub(r"\s*\(\d{2}/\d{2}/\d{4}\)$", "", row["source_datacentre"])
        loc_year = _accessed_year(row["source_datacentre"])
        if loc_year is not None:
            location_source = f"{location_source} (accessed {loc_year})"
        out.append(
            [
                provider,
                name,
                region_key(name),
                zone,
                pue,
                pue_source,
                "" if pue_year is None else str(pue_year),
                location_source,
                "; ".join(notes),
                _origin(path, line),
            ]
        )
    aws_default = pue_defaults["aws"]
    for code, public_name, zone in AWS_REGIONS:
        if zone not in zones:
            raise SystemExit(f"AWS region {code}: zone {zone} missing from the grid table")
        out.append(
            [
                "aws",
                code,
                region_key(code),
                zone,
                aws_default[1],
                aws_default[2],
                aws_default[3],
                f"{AWS_LOCATION_SOURCE}: {public_name}",
                "PUE: aws default",
                "wattwise scripts/build_carbon_tables.py AWS_REGIONS",
            ]
        )
    seen: set[tuple[str, str]] = set()
    for record in out:
        key = (record[0], record[2])
        if key in seen:
            raise SystemExit(f"two cloud regions share the lookup key {key}")
        seen.add(key)
    out.sort(key=lambda r: (r[0], r[2]))
    return out, skipped


def build_equivalents(source: Path) -> list[list[str]]:
    path = source / "referenceValues.csv"
    rows = {row["variable"]: (line, row) for line, row in _rows(path)}
    out: list[list[str]] = []
    for variable, key, label, unit in EQUIVALENTS:
        line, row = rows[variable]
        year = EQUIVALENT_YEARS.get(variable)
        text = row["source"]
        same = re.search(r"same source as (\w+)", text)
        if same:  # tree_month: "same source as treeYear" (11000 g per tree-year / 12)
            text = f"{rows[same.group(1)][1]['source']} (per tree-year / 12)"
        out.append(
            [
                key,
                label,
                unit,
                _number(row["value"]),
                text,
                "" if year is None else str(year),
                _origin(path, line),
            ]
        )
    return out


def build_tables(source: Path) -> tuple[dict[str, str], list[str]]:
    """All output files (name -> text) and the rows left out, with why."""
    grid, zones = build_grid(source)
    pue_rows, pue_by_provider = build_pue_defaults(source)
    clouds, skipped = build_clouds(source, zones, pue_by_provider)
    equivalents = build_equivalents(source)
    files = {
        "grid_intensity.csv": _csv_text(
            [
                "zone",
                "name",
                "continent",
                "kind",
                "intensity_g_per_kwh",
                "year",
                "source",
                "note",
                "origin",
            ],
            grid,
        ),
        "cloud_regions.csv": _csv_text(
            [
                "provider",
                "region",
                "key",
                "zone",
                "pue",
                "pue_source",
                "pue_year",
                "location_source",
                "note",
                "origin",
            ],
            clouds,
        ),
        "pue_defaults.csv": _csv_text(["provider", "pue", "source", "year", "origin"], pue_rows),
        "equivalents.csv": _csv_text(
            ["key", "label", "unit", "g_per_unit", "source", "year", "origin"], equivalents
        ),
        "provenance.json": json.dumps(
            {**CREDIT, "left_out": skipped}, indent=2, ensure_ascii=False, sort_keys=True
        )
        + "\n",
    }
    return files, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out; write nothing"
    )
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"error: no Green Algorithms data at {args.source}", file=sys.stderr)
        return 2
    files, skipped = build_tables(args.source)
    if args.check:
        stale = [
            name
            for name, text in files.items()
            if not (args.out / name).is_file()
            or (args.out / name).read_bytes() != text.encode("utf-8")
        ]
        for name in stale:
            print(f"stale: {name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_bytes(text.encode("utf-8"))
        print(f"wrote {args.out / name}")
    for item in skipped:
        print(f"left out: {item}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
