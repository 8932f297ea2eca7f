"""Live grid intensity from the Electricity Maps API (v3), degrading to the bundled data.

``GET {base}/carbon-intensity/latest?zone=DE`` with the ``auth-token`` header answers
``{"zone": "DE", "carbonIntensity": 302, "datetime": "...", ...}`` in gCO2e/kWh. The
client is handed an ``httpx.Client`` (tests pass one on ``httpx.MockTransport``).

The token comes from ``$WATTWISE_ELECTRICITYMAPS_TOKEN`` (or the caller). It is sent in
the header and nowhere else: never in a URL, a log record, an exception message, a
``repr`` or a stored run. Exceptions raised here are built from status codes and our own
words, and are raised ``from None`` so that no httpx request (which holds the header)
travels with them.

:func:`live_location` never raises for a provider failure: a timeout, an HTTP error (401,
429, 5xx), a malformed answer or a missing token gives the bundled figure with a one-line
warning, and the fallback is recorded in the location's note (so a run's
``intensity_source`` reads ``bundled (live provider failed: HTTP 429): ...``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from wattwise._errors import ProviderError
from wattwise.carbon._location import Location

__all__ = [
    "DEFAULT_BASE_URL",
    "TOKEN_ENV",
    "ElectricityMapsClient",
    "LiveIntensity",
    "live_location",
]

TOKEN_ENV = "WATTWISE_ELECTRICITYMAPS_TOKEN"
DEFAULT_BASE_URL = "https://api.electricitymap.org/v3"

logger = logging.getLogger("wattwise.carbon")


@dataclass(frozen=True)
class LiveIntensity:
    """One answer of the live provider.

    Attributes:
        zone: the zone the provider answered for.
        intensity_g_per_kwh: grid intensity, in gCO2e/kWh.
        measured_at: the instant the figure stands for (UTC).
        emission_factor_type: ``lifecycle`` or ``direct`` when the answer says, else None.
        is_estimated: whether the provider estimated the figure, when it says.
    """

    zone: str
    intensity_g_per_kwh: float
    measured_at: datetime
    emission_factor_type: str | None = None
    is_estimated: bool | None = None


class _Token:
    """A secret that does not show itself in reprs, logs or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<token hidden>"

    __str__ = __repr__


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ElectricityMapsClient:
    """Electricity Maps API client for the latest carbon intensity of a zone.

    Args:
        client: the httpx client to send requests with (its transport decides where
            they go; the caller closes it).
        token: the API token; default ``$WATTWISE_ELECTRICITYMAPS_TOKEN``.
        base_url: API root, default ``https://api.electricitymap.org/v3``.
        timeout_s: per-request timeout, in s.
        max_retry_wait_s: a 429 whose Retry-After is at most this is retried once after
            waiting; a longer one fails at once (a run is not held up for minutes).
        sleep: how to wait (tests pass a fake).
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        max_retry_wait_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._token = _Token(token) if token else None
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    @property
    def has_token(self) -> bool:
        """Whether a token is set."""
        return self._token is not None

    def __repr__(self) -> str:
        token = "set" if self._token else "missing"
        return f"ElectricityMapsClient(base_url={self._base_url!r}, token={token})"

    def _get(self, zone: str) -> httpx.Response:
        if self._token is None:
            raise ProviderError(f"no Electricity Maps token: set ${TOKEN_ENV}")
        try:
            return self._client.get(
                f"{self._base_url}/carbon-intensity/latest",
                params={"zone": zone},
                headers={"auth-token": self._token.reveal()},
                timeout=self._timeout_s,
            )
        except httpx.TimeoutException:
            raise ProviderError(f"timeout after {self._timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"connection failed ({type(exc).__name__})") from None

    def latest(self, zone: str) -> LiveIntensity:
        """The latest carbon intensity of a zone.

        Raises:
            ProviderError: no token, timeout, connection failure, HTTP error (the message
                says which: ``HTTP 401``, ``HTTP 429`` with its Retry-After...), or an
                answer that is not the documented JSON.
        """
        response = self._get(zone)
        if response.status_code == 429:
            wait = _retry_after_s(response.headers.get("retry-after"))
            if wait is not None and wait <= self._max_retry_wait_s:
                self._sleep(wait)
                response = self._get(zone)
        if response.status_code != 200:
            raise ProviderError(self._status_message(response))
        return self._parse(zone, response)

    @staticmethod
    def _status_message(response: httpx.Response) -> str:
        code = response.status_code
        if code == 401 or code == 403:
            return f"HTTP {code} (token refused)"
        if code == 429:
            wait = _retry_after_s(response.headers.get("retry-after"))
            after = f", retry after {wait:.0f} s" if wait is not None else ""
            return f"HTTP 429 (rate limited{after})"
        if code == 404:
            return "HTTP 404 (zone unknown to Electricity Maps)"
        return f"HTTP {code}"

    @staticmethod
    def _parse(zone: str, response: httpx.Response) -> LiveIntensity:
        try:
            data = response.json()
        except ValueError:
            raise ProviderError("malformed answer (not JSON)") from None
        if not isinstance(data, dict):
            raise ProviderError("malformed answer (not a JSON object)")
        value = data.get("carbonIntensity")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProviderError("malformed answer (no numeric carbonIntensity)")
        intensity = float(value)
        if not math.isfinite(intensity) or intensity < 0:
            raise ProviderError(f"malformed answer (carbonIntensity {intensity!r})")
        stamp = data.get("datetime")
        try:
            measured = datetime.fromisoformat(str(stamp)) if stamp else None
        except ValueError:
            measured = None
        if measured is None:
            raise ProviderError("malformed answer (no ISO datetime)")
        if measured.tzinfo is None:
            measured = measured.replace(tzinfo=UTC)
        factor = data.get("emissionFactorType")
        estimated = data.get("isEstimated")
        answered = data.get("zone")
        return LiveIntensity(
            zone=answered if isinstance(answered, str) and answered else zone,
            intensity_g_per_kwh=intensity,
            measured_at=measured.astimezone(UTC),
            emission_factor_type=factor if isinstance(factor, str) else None,
            is_estimated=estimated if isinstance(estimated, bool) else None,
        )


def live_location(
    location: Location,
    *,
    client: httpx.Client | ElectricityMapsClient,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    on_warning: Callable[[str], None] | None = None,
) -> Location:
    """The location with its live intensity, or the bundled one if the provider fails.

    Args:
        location: the bundled location (from :func:`resolve_location`).
        client: an ``httpx.Client``, or a ready :class:`ElectricityMapsClient`.
        token: the API token; default ``$WATTWISE_ELECTRICITYMAPS_TOKEN``.
        environ: environment to read the token from (default ``os.environ``).
        timeout_s: request timeout, in s (when ``client`` is an ``httpx.Client``).
        on_warning: called with the one-line warning instead of logging it (a CLI
            prints it its own way).

    Returns:
        ``kind="live"`` with the provider's figure, or the bundled location with
        ``note="live provider failed: <why>"`` after a one-line warning (on the
        ``wattwise.carbon`` logger unless ``on_warning`` is given).
    """
    if isinstance(client, ElectricityMapsClient):
        api = client
    else:
        env = os.environ if environ is None else environ
        api = ElectricityMapsClient(
            client, token=token or env.get(TOKEN_ENV) or None, timeout_s=timeout_s
        )
    try:
        answer = api.latest(location.zone)
    except ProviderError as exc:
        reason = f"live provider failed: {exc}"
        message = f"{reason}; using the bundled figure for {location.zone}"
        if on_warning is None:
            logger.warning("%s", message)
        else:
            on_warning(message)
        return replace(location, note=reason)
    kind = answer.emission_factor_type or "lifecycle/direct not stated"
    estimated = ", estimated" if answer.is_estimated else ""
    return replace(
        location,
        intensity_g_per_kwh=answer.intensity_g_per_kwh,
        year=answer.measured_at.year,
        source=(
            f"Electricity Maps API, zone {answer.zone}, "
            f"{answer.measured_at.strftime('%Y-%m-%dT%H:%MZ')} ({kind}{estimated})"
        ),
        kind="live",
        note=None,
    )
