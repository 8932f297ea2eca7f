"""Choosing the zone: arguments, environment, config file, cloud regions, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from wattwise import ConfigError
from wattwise.carbon import find_cloud_region, find_zone, parse_pue, resolve_location


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return {"WATTWISE_CONFIG": str(path)}


def test_zone_argument_gives_bundled_intensity_with_source_and_year(tmp_path: Path) -> None:
    loc = resolve_location("DE", environ=_config(tmp_path, ""))
    assert (loc.zone, loc.intensity_g_per_kwh, loc.year, loc.pue) == ("DE", 338.66, 2020, 1.0)
    assert loc.kind == "bundled"
    assert "Association of Issuing Bodies" in loc.source
    assert loc.intensity_source.startswith("bundled: ") and loc.intensity_source.endswith("2020")


def test_zone_matches_case_insensitively_and_by_name(tmp_path: Path) -> None:
    env = _config(tmp_path, "")
    assert resolve_location("us-ca", environ=env).zone == "US-CA"
    assert resolve_location("California", environ=env).zone == "US-CA"
    assert resolve_location("france", environ=env).zone == "FR"


def test_unknown_zone_lists_nearest_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown zone 'Germny'; did you mean: DE \(Germany\)"):
        find_zone("Germny")
    with pytest.raises(ConfigError, match="US-CA"):
        find_zone("US-CAL")


def test_precedence_arguments_then_environment_then_config(tmp_path: Path) -> None:
    env = {**_config(tmp_path, 'zone = "FR"\npue = 1.3\n'), "WATTWISE_ZONE": "SE"}
    assert resolve_location("DE", environ=env).zone == "DE"
    assert resolve_location(environ=env).zone == "SE"
    del env["WATTWISE_ZONE"]
    loc = resolve_location(environ=env)
    assert (loc.zone, loc.pue, loc.pue_source) == ("FR", 1.3, "set by the user")


def test_the_first_level_naming_a_place_decides_zone_and_cloud(tmp_path: Path) -> None:
    env = {**_config(tmp_path, 'zone = "FR"\n'), "WATTWISE_CLOUD": "aws:eu-central-1"}
    loc = resolve_location(environ=env)
    assert (loc.zone, loc.cloud, loc.pue) == ("DE", "aws:eu-central-1", 1.2)


def test_nothing_configured_gives_the_world_average_and_says_so(tmp_path: Path) -> None:
    loc = resolve_location(environ=_config(tmp_path, "other_setting = 3\n"))
    assert loc.zone == "WORLD"
    assert loc.intensity_g_per_kwh == 475.0
    assert loc.note is not None and "world average" in loc.note
    assert "world average" in loc.intensity_source


def test_default_config_path_under_user_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wattwise.carbon._location as location

    monkeypatch.setattr(location.platformdirs, "user_config_dir", lambda app: str(tmp_path / app))
    (tmp_path / "wattwise").mkdir()
    (tmp_path / "wattwise" / "config.toml").write_text('zone = "NO"\n', encoding="utf-8")
    assert resolve_location(environ={}).zone == "NO"


def test_cloud_region_maps_to_zone_and_pue(tmp_path: Path) -> None:
    env = _config(tmp_path, "")
    loc = resolve_location(cloud="gcp:europe-west1", environ=env)
    assert (loc.zone, loc.pue, loc.cloud) == ("BE", 1.08, "gcp:europe-west1")
    assert "2020" in loc.pue_source
    assert find_cloud_region("azure:westeurope").region == "West Europe"
    assert find_cloud_region("AZURE:West Europe").zone == "NL"
    assert find_cloud_region("azure:germanywestcentral").zone == "DE"


def test_zone_and_cloud_together_zone_intensity_cloud_pue(tmp_path: Path) -> None:
    loc = resolve_location("FR", "gcp:europe-west1", environ=_config(tmp_path, ""))
    assert (loc.zone, loc.pue) == ("FR", 1.08)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("europe-west1", "not PROVIDER:REGION"),
        ("ibm:eu-de", "unknown cloud provider 'ibm'"),
        ("gcp:europe-west99", "unknown gcp region 'europe-west99'; did you mean: gcp:europe-west"),
    ],
)
def test_bad_cloud_region_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        find_cloud_region(spec)


def test_pue_numbers_and_datacenter_default() -> None:
    assert parse_pue("1.4") == (1.4, "set by the user")
    pue, source = parse_pue("datacenter")
    assert pue == 1.56 and "2024" in source
    for bad in ("0.9", "abc", "nan"):
        with pytest.raises(ConfigError, match="PUE"):
            parse_pue(bad)


def test_bad_config_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_location(environ=_config(tmp_path, "zone = \n"))
    with pytest.raises(ConfigError, match="'zone' must be a string"):
        resolve_location(environ=_config(tmp_path, "zone = 3\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_location(environ={"WATTWISE_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="unknown zone 'XX'"):
        resolve_location(environ=_config(tmp_path, 'zone = "XX"\n'))
