"""The bundled carbon tables: provenance on every row, and the build script reproduces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import wattwise.carbon as carbon
from wattwise.carbon import cloud_regions, equivalent_factors, grid_zones, pue_defaults

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "carbon"
DATA = ROOT / "src" / "wattwise" / "carbon" / "data"
SCRIPT = ROOT / "scripts" / "build_carbon_tables.py"


def test_every_grid_zone_has_a_source_and_an_origin_line() -> None:
    zones = grid_zones()
    assert len(zones) > 100
    for zone in zones.values():
        assert zone.source, zone
        assert zone.origin.startswith("Green Algorithms data/latest@30df2fe CI_aggregated.csv:")
        assert zone.intensity_g_per_kwh >= 0
        # a row without a year says so in its note
        assert zone.year is not None or "no data year" in zone.note


def test_world_default_countries_us_states_and_canadian_provinces() -> None:
    zones = grid_zones()
    assert next(iter(zones)) == "WORLD"
    assert zones["WORLD"].kind == "world"
    assert zones["DE"].intensity_g_per_kwh == pytest.approx(338.66)
    assert zones["DE"].year == 2020
    assert sum(z.startswith("US-") for z in zones) >= 50
    provinces = {"CA-AB", "CA-BC", "CA-MB", "CA-NB", "CA-NL", "CA-NS", "CA-ON", "CA-QC"}
    assert provinces <= set(zones)
    assert "ISO 3166-2 CA-MB" in zones["CA-MB"].note  # renamed from the source's CA-MT
    assert zones["GB"].year == 2020  # "2019/20 data"


def test_cloud_regions_cover_three_providers_and_known_zones() -> None:
    zones = grid_zones()
    regions = cloud_regions()
    assert {r.provider for r in regions} == {"aws", "azure", "gcp"}
    for region in regions:
        assert region.zone in zones
        assert region.pue >= 1.0
        assert region.pue_source and region.location_source and region.origin
    by_name = {(r.provider, r.region): r for r in regions}
    assert by_name["gcp", "europe-west1"].pue == pytest.approx(1.08)
    assert by_name["aws", "eu-central-1"].zone == "DE"
    assert by_name["azure", "West Europe"].zone == "NL"


def test_pue_defaults_and_equivalents_carry_sources() -> None:
    defaults = pue_defaults()
    assert defaults["unknown"].pue == pytest.approx(1.56)
    assert defaults["unknown"].year == 2024
    keys = [f.key for f in equivalent_factors()]
    assert keys[:2] == ["car_km", "tree_months"]
    assert any(k.startswith("flights_") for k in keys)
    for factor in equivalent_factors():
        assert factor.g_per_unit > 0 and factor.source and factor.origin


def test_provenance_credits_green_algorithms_cc_by() -> None:
    credit = carbon.dataset_credit()
    assert "CC BY 4.0" in credit["licence"]
    assert "Lannelongue" in credit["authors"]


#: Tables written by hand, with their sources in each row, not built by the script.
HAND_WRITTEN = {"embodied_factors.csv"}


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/carbon is absent")
def test_build_script_reproduces_the_committed_tables_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "tables"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--source", str(SHARED), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    built = sorted(p.name for p in out.iterdir())
    assert built == sorted(
        p.name
        for p in DATA.iterdir()
        if p.suffix in {".csv", ".json"}
        and not p.name.startswith("trace_")
        and p.name not in HAND_WRITTEN
    )
    for name in built:
        assert (out / name).read_bytes() == (DATA / name).read_bytes(), name
