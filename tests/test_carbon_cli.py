"""`wattwise carbon intensity | zones | equivalents`, mounted as the main app mounts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wattwise.cli._carbon import carbon_app


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("WATTWISE_CONFIG", str(config))
    for name in (
        "WATTWISE_ZONE",
        "WATTWISE_CLOUD",
        "WATTWISE_PUE",
        "WATTWISE_ELECTRICITYMAPS_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    main = typer.Typer()
    main.add_typer(carbon_app, name="carbon")
    return main


def _run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["carbon", *args])
    return result.exit_code, result.stdout, result.stderr


def test_intensity_json_has_zone_intensity_source_year(app: typer.Typer) -> None:
    code, out, _ = _run(app, "intensity", "--zone", "FR", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["zone"] == "FR"
    assert data["intensity_g_per_kwh"] == 51.28
    assert data["year"] == 2020
    assert "Association of Issuing Bodies" in data["source"]
    assert data["pue"] == 1.0


def test_intensity_cloud_region_and_human_output(app: typer.Typer) -> None:
    code, out, _ = _run(app, "intensity", "--cloud", "gcp:europe-west1")
    assert code == 0
    assert "BE Belgium: 161.89 gCO2e/kWh (bundled, 2020)" in out
    assert "PUE 1.08 (gcp:europe-west1)" in out
    assert "CC BY 4.0" in out


def test_intensity_from_the_environment_and_world_default(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _run(app, "intensity", "--json")
    assert code == 0 and json.loads(out)["zone"] == "WORLD"
    assert "world average" in err
    monkeypatch.setenv("WATTWISE_ZONE", "SE")
    code, out, _ = _run(app, "intensity", "--json")
    assert json.loads(out)["zone"] == "SE"


def test_intensity_live_without_token_falls_back_with_one_warning(app: typer.Typer) -> None:
    code, out, err = _run(app, "intensity", "--zone", "DE", "--live", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "bundled" and data["note"].startswith("live provider failed")
    assert err.count("warning:") == 1


def test_unknown_zone_is_a_one_line_error_with_suggestions(app: typer.Typer) -> None:
    code, _, err = _run(app, "intensity", "--zone", "Frnace")
    assert code == 2
    assert "unknown zone 'Frnace'; did you mean: FR (France)" in err
    assert len(err.strip().splitlines()) == 1


def test_zones_lists_every_zone_with_source_and_year(app: typer.Typer) -> None:
    code, out, _ = _run(app, "zones", "--json")
    assert code == 0
    zones = json.loads(out)
    assert zones[0]["zone"] == "WORLD"
    assert {"zone", "name", "intensity_g_per_kwh", "year", "source"} <= set(zones[0])
    code, out, _ = _run(app, "zones")
    assert code == 0 and "Grid zones" in out


def test_zones_clouds(app: typer.Typer) -> None:
    code, out, _ = _run(app, "zones", "--clouds", "--json")
    assert code == 0
    clouds = {c["cloud"]: c for c in json.loads(out)}
    assert clouds["aws:us-east-1"]["zone"] == "US-VA"
    code, out, _ = _run(app, "zones", "--clouds")
    assert code == 0 and "Cloud regions" in out


def test_equivalents(app: typer.Typer) -> None:
    code, out, _ = _run(app, "equivalents", "1750", "--json")
    assert code == 0
    items = {e["key"]: e for e in json.loads(out)["equivalents"]}
    assert items["car_km"]["amount"] == pytest.approx(10.0)
    code, out, _ = _run(app, "equivalents", "1750")
    assert code == 0 and "10 km driven by an average European passenger car" in out
