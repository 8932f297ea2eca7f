"""Where the energy is drawn: a grid zone (or a cloud region) with its intensity and PUE.

The zone is chosen, most explicit first, from

1. the arguments (``--zone DE``, ``--cloud gcp:europe-west1``);
2. the environment (``WATTWISE_ZONE``, ``WATTWISE_CLOUD``, ``WATTWISE_PUE``);
3. the config file (``zone = "DE"``, ``cloud = "aws:eu-west-1"``, ``pue = 1.2``), at
   ``$WATTWISE_CONFIG`` or ``platformdirs.user_config_dir("wattwise")/config.toml``;
4. the world average, said so in the result's ``note``.

The first level that names a zone or a cloud region decides both. A zone and a cloud
region given together: the zone's intensity, the region's PUE. Nothing here touches the
network; live intensity is :func:`wattwise.carbon.live_location`, on request only.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from wattwise._errors import ConfigError
from wattwise.carbon._data import CloudRegion, GridZone, cloud_regions, grid_zones, pue_defaults
from wattwise.carbon._data import region_key as _region_key

__all__ = [
    "CLOUD_ENV",
    "CONFIG_ENV",
    "PUE_ENV",
    "ZONE_ENV",
    "Location",
    "Settings",
    "config_path",
    "find_cloud_region",
    "find_zone",
    "load_settings",
    "location_for_zone",
    "parse_pue",
    "resolve_location",
]

ZONE_ENV = "WATTWISE_ZONE"
CLOUD_ENV = "WATTWISE_CLOUD"
PUE_ENV = "WATTWISE_PUE"
CONFIG_ENV = "WATTWISE_CONFIG"

WORLD = "WORLD"
CLOUD_PROVIDERS = ("aws", "azure", "gcp")
_NO_PUE_SOURCE = "none applied: a machine outside a data centre (set pue to apply one)"


@dataclass(frozen=True)
class Location:
    """A grid zone with the intensity and PUE to apply, and where each comes from.

    Attributes:
        zone: grid zone code (``DE``, ``US-CA``, ``WORLD``).
        name: human name of the zone.
        intensity_g_per_kwh: grid carbon intensity, in gCO2e/kWh.
        year: data year of the intensity, or None where its source states none.
        source: who published the intensity figure.
        kind: ``bundled`` (wattwise's tables) or ``live`` (Electricity Maps API).
        pue: power usage effectiveness applied to the measured energy (ratio >= 1).
        pue_source: where the PUE comes from.
        cloud: ``provider:region`` when chosen through a cloud region, else None.
        note: anything the user should know (a live provider that failed, a default).
    """

    zone: str
    name: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    kind: str = "bundled"
    pue: float = 1.0
    pue_source: str = _NO_PUE_SOURCE
    cloud: str | None = None
    note: str | None = None

    @property
    def intensity_source(self) -> str:
        """One line naming the intensity's origin and year (the run's ``intensity_source``)."""
        year = str(self.year) if self.year is not None else "year not stated"
        head = f"{self.kind} ({self.note})" if self.note else self.kind
        return f"{head}: {self.source}; {year}"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "zone": self.zone,
            "name": self.name,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "source": self.source,
            "year": self.year,
            "kind": self.kind,
            "intensity_source": self.intensity_source,
            "pue": self.pue,
            "pue_source": self.pue_source,
            "cloud": self.cloud,
            "note": self.note,
        }


@dataclass(frozen=True)
class Settings:
    """Carbon settings from one level (arguments, environment or config file).

    Attributes:
        zone: zone code or name, or None.
        cloud: ``provider:region``, or None.
        pue: PUE (a number, or ``datacenter`` for an unknown data centre), or None.
        origin: where they were read (``--zone``, ``environment``, a file path).
    """

    zone: str | None = None
    cloud: str | None = None
    pue: str | float | None = None
    origin: str = ""


def _suggest(query: str, choices: Mapping[str, str]) -> str:
    """`; did you mean: A, B?` from difflib over keys (matched case-insensitively)."""
    lowered = {k.lower(): v for k, v in choices.items()}
    matches = difflib.get_close_matches(query.lower(), list(lowered), n=5, cutoff=0.5)
    seen: list[str] = []
    for match in matches:
        if lowered[match] not in seen:
            seen.append(lowered[match])
    return f"; did you mean: {', '.join(seen)}?" if seen else ""


def find_zone(query: str) -> GridZone:
    """The grid zone for a code (``de``, ``US-CA``) or a name (``Germany``, ``California``).

    Raises:
        ConfigError: unknown zone; the message lists the nearest matches.
    """
    zones = grid_zones()
    text = query.strip()
    if text.upper() in zones:
        return zones[text.upper()]
    by_name: dict[str, GridZone] = {}
    for zone in zones.values():
        by_name.setdefault(zone.name.lower(), zone)
        by_name.setdefault(zone.name.split(" (")[0].lower(), zone)
    if text.lower() in by_name:
        return by_name[text.lower()]
    choices = {z.zone: f"{z.zone} ({z.name})" for z in zones.values()}
    choices.update({z.name: f"{z.zone} ({z.name})" for z in zones.values()})
    hint = _suggest(text, choices)
    raise ConfigError(
        f"unknown zone {query!r}{hint or ''} (`wattwise carbon zones` lists them all)"
    )


def find_cloud_region(spec: str) -> CloudRegion:
    """The cloud region for ``provider:region`` (``gcp:europe-west1``, ``azure:westeurope``).

    Raises:
        ConfigError: malformed spec, unknown provider or region (with nearest matches).
    """
    provider, sep, region = spec.partition(":")
    provider = provider.strip().lower()
    if not sep or not region.strip():
        raise ConfigError(f"cloud region {spec!r} is not PROVIDER:REGION, e.g. gcp:europe-west1")
    if provider not in CLOUD_PROVIDERS:
        raise ConfigError(
            f"unknown cloud provider {provider!r} in {spec!r}; known: {', '.join(CLOUD_PROVIDERS)}"
        )
    key = _region_key(region)
    regions = [r for r in cloud_regions() if r.provider == provider]
    for candidate in regions:
        if candidate.key == key:
            return candidate
    choices = {r.key: f"{provider}:{r.region}" for r in regions}
    choices.update({r.region: f"{provider}:{r.region}" for r in regions})
    hint = _suggest(key, choices) or _suggest(region.strip(), choices)
    raise ConfigError(
        f"unknown {provider} region {region.strip()!r}{hint} "
        "(`wattwise carbon zones --clouds` lists them)"
    )


#: PUEs that can be real: 1.0 is no overhead; surveys find almost no site above 2.5.
PUE_RANGE = (1.0, 3.0)


def parse_pue(value: str | float) -> tuple[float, str]:
    """A PUE and its source from a number or the word ``datacenter``.

    ``datacenter`` (or ``unknown``) is the bundled default for a data centre of unknown
    efficiency (Uptime Institute survey).

    Raises:
        ConfigError: not a number in :data:`PUE_RANGE` nor a known word.
    """
    if isinstance(value, str) and value.strip().lower() in {"datacenter", "unknown"}:
        default = pue_defaults()["unknown"]
        return default.pue, f"default for an unknown data centre: {default.source}; {default.year}"
    try:
        pue = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"PUE {value!r} is neither a number >= 1 nor 'datacenter'") from None
    low, high = PUE_RANGE
    if not low <= pue <= high:  # also refuses NaN
        raise ConfigError(
            f"PUE {value!r} is not plausible: a data centre's PUE lies between {low:g} "
            f"(no overhead) and {high:g}"
        )
    return pue, "set by the user"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the config file is: ``$WATTWISE_CONFIG`` or the user config dir."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir("wattwise")) / "config.toml"


def load_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, Settings]:
    """The environment's and the config file's carbon settings, in that order.

    A config file that does not exist gives empty settings, unless ``$WATTWISE_CONFIG``
    names it explicitly. Keys other than ``zone``, ``cloud`` and ``pue`` are ignored:
    the file is shared with the rest of wattwise.

    Raises:
        ConfigError: the file cannot be read or parsed, or a key has the wrong type.
    """
    env = os.environ if environ is None else environ
    from_env = Settings(
        zone=env.get(ZONE_ENV) or None,
        cloud=env.get(CLOUD_ENV) or None,
        pue=env.get(PUE_ENV) or None,
        origin="environment",
    )
    path = config_path(env)
    if not path.is_file():
        if env.get(CONFIG_ENV):
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) does not exist")
        return from_env, Settings(origin=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key in ("zone", "cloud"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"config file {path}: '{key}' must be a string")
    pue = data.get("pue")
    if pue is not None and (isinstance(pue, bool) or not isinstance(pue, (str, int, float))):
        raise ConfigError(f"config file {path}: 'pue' must be a number or 'datacenter'")
    from_file = Settings(
        zone=data.get("zone"),
        cloud=data.get("cloud"),
        pue=float(pue) if isinstance(pue, int) else pue,
        origin=str(path),
    )
    return from_env, from_file


def location_for_zone(zone: GridZone) -> Location:
    """A bundled location for a grid zone, no PUE applied."""
    return Location(
        zone=zone.zone,
        name=zone.name,
        intensity_g_per_kwh=zone.intensity_g_per_kwh,
        year=zone.year,
        source=zone.source,
    )


def resolve_location(
    zone: str | None = None,
    cloud: str | None = None,
    *,
    pue: str | float | None = None,
    environ: Mapping[str, str] | None = None,
) -> Location:
    """The location a run draws its energy from, from arguments, environment or config.

    Args:
        zone: zone code or name (``--zone``), or None.
        cloud: ``provider:region`` (``--cloud``), or None.
        pue: PUE override (number or ``datacenter``), or None.
        environ: the environment to read (default ``os.environ``; tests pass a dict).

    Returns:
        The bundled location: intensity with source and year, PUE with its source.
        Without any setting: the world average, with a note saying so.

    Raises:
        ConfigError: unknown zone or region (with nearest matches), bad PUE, bad config.
    """
    for flag, given in (("--zone", zone), ("--cloud", cloud)):
        if given is not None and not given.strip():
            example = "a zone code such as DE" if flag == "--zone" else "provider:region"
            raise ConfigError(
                f"{flag} is empty: give {example}, or leave it out "
                "(`wattwise carbon zones` lists them)"
            )
    levels = [Settings(zone=zone, cloud=cloud, pue=pue, origin="arguments")]
    levels.extend(load_settings(environ))
    chosen = next((s for s in levels if s.zone or s.cloud), None)
    pue_value = next((s.pue for s in levels if s.pue is not None), None)

    note: str | None = None
    region: CloudRegion | None = None
    if chosen is None:
        grid = grid_zones()[WORLD]
        note = "no zone configured, world average used; set --zone, $WATTWISE_ZONE or config"
    else:
        region = find_cloud_region(chosen.cloud) if chosen.cloud else None
        if chosen.zone:
            grid = find_zone(chosen.zone)
        else:
            assert region is not None  # a level is chosen for its zone or its cloud
            grid = grid_zones()[region.zone]

    location = replace(location_for_zone(grid), note=note)
    if region is not None:
        year = f"; {region.pue_year}" if region.pue_year else ""
        location = replace(
            location,
            cloud=f"{region.provider}:{region.region}",
            pue=region.pue,
            pue_source=f"{region.pue_source}{year}",
        )
    if pue_value is not None:
        value, source = parse_pue(pue_value)
        location = replace(location, pue=value, pue_source=source)
    return location
