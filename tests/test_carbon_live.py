"""The Electricity Maps client on httpx.MockTransport: success, failures, fallback, secrecy."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from wattwise import ProviderError
from wattwise.carbon import ElectricityMapsClient, Location, live_location, resolve_location
from wattwise.cli._carbon import carbon_app

TOKEN = "tok-S3CRET-4242-do-not-leak"
OK_BODY = {
    "zone": "DE",
    "carbonIntensity": 302,
    "datetime": "2024-05-01T12:00:00.000Z",
    "updatedAt": "2024-05-01T11:51:09.000Z",
    "emissionFactorType": "lifecycle",
    "isEstimated": False,
}

Handler = Callable[[httpx.Request], httpx.Response]


def _bundled(tmp_path: Path) -> Location:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    return resolve_location("DE", environ={"WATTWISE_CONFIG": str(config)})


def _client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def _ok(request: httpx.Request) -> httpx.Response:
    assert request.url.path == "/v3/carbon-intensity/latest"
    assert request.url.params["zone"] == "DE"
    assert request.headers["auth-token"] == TOKEN
    return httpx.Response(200, json=OK_BODY)


def _status(code: int, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers=headers, json={"message": f"error {code}"})

    return handler


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("the server did not answer in time", request=request)


def test_success_gives_a_live_location_with_source_and_year(tmp_path: Path) -> None:
    with _client(_ok) as client:
        loc = live_location(_bundled(tmp_path), client=client, token=TOKEN)
    assert loc.kind == "live"
    assert loc.intensity_g_per_kwh == 302.0
    assert loc.year == 2024
    assert loc.source == "Electricity Maps API, zone DE, 2024-05-01T12:00Z (lifecycle)"
    assert loc.note is None
    assert loc.intensity_source.startswith("live: Electricity Maps API")


def test_token_read_from_the_environment(tmp_path: Path) -> None:
    with _client(_ok) as client:
        loc = live_location(
            _bundled(tmp_path), client=client, environ={"WATTWISE_ELECTRICITYMAPS_TOKEN": TOKEN}
        )
    assert loc.kind == "live"


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_status(401), "HTTP 401 (token refused)"),
        (_status(429, {"Retry-After": "60"}), "HTTP 429 (rate limited, retry after 60 s)"),
        (_status(500), "HTTP 500"),
        (lambda r: httpx.Response(200, text="<html>oops</html>"), "malformed answer (not JSON)"),
        (lambda r: httpx.Response(200, json={"zone": "DE"}), "no numeric carbonIntensity"),
        (
            lambda r: httpx.Response(200, json={**OK_BODY, "carbonIntensity": -3}),
            "carbonIntensity -3.0",
        ),
        (lambda r: httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (_timeout, "timeout after 10 s"),
    ],
)
def test_failures_fall_back_to_bundled_with_one_warning_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, handler: Handler, reason: str
) -> None:
    bundled = _bundled(tmp_path)
    slept: list[float] = []
    with _client(handler) as http, caplog.at_level(logging.WARNING, logger="wattwise.carbon"):
        api = ElectricityMapsClient(http, token=TOKEN, sleep=slept.append)
        loc = live_location(bundled, client=api)
    assert slept == []  # a long Retry-After is not waited for
    assert (loc.kind, loc.intensity_g_per_kwh, loc.year) == ("bundled", 338.66, 2020)
    assert loc.note is not None and reason in loc.note
    assert loc.intensity_source.startswith("bundled (live provider failed: ")
    warnings = [r for r in caplog.records if r.name == "wattwise.carbon"]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    with _client(handler) as http, pytest.raises(ProviderError, match=r"^.+$"):
        ElectricityMapsClient(http, token=TOKEN).latest("DE")


def test_short_retry_after_is_waited_for_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return _ok(request)

    slept: list[float] = []
    with _client(handler) as http:
        api = ElectricityMapsClient(http, token=TOKEN, sleep=slept.append)
        loc = live_location(_bundled(tmp_path), client=api)
    assert (slept, len(calls), loc.kind) == ([1.0], 2, "live")


def test_no_token_falls_back_without_a_request(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request without a token")

    warned: list[str] = []
    with _client(handler) as http:
        loc = live_location(_bundled(tmp_path), client=http, environ={}, on_warning=warned.append)
    assert loc.note == "live provider failed: no Electricity Maps token: set " + (
        "$WATTWISE_ELECTRICITYMAPS_TOKEN"
    )
    assert len(warned) == 1


def test_the_token_never_appears_in_output_logs_exceptions_or_reprs(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    handlers: list[Handler] = [
        _ok,
        _status(401),
        _status(429, {"Retry-After": "30"}),
        _status(500),
        lambda r: httpx.Response(200, text="{not json"),
        _timeout,
    ]
    bundled = _bundled(tmp_path)
    with caplog.at_level(logging.DEBUG):  # httpx's own debug logs included
        for handler in handlers:
            with _client(handler) as http:
                api = ElectricityMapsClient(http, token=TOKEN)
                seen.append(repr(api))
                try:
                    seen.append(repr(api.latest("DE")))
                except ProviderError as exc:
                    seen.extend([str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)])
                loc = live_location(bundled, client=api)
                seen.extend([repr(loc), json.dumps(loc.to_dict())])

        # and through the CLI, with the token in the environment
        real_client = httpx.Client
        for handler in handlers:
            monkeypatch.setattr(
                httpx,
                "Client",
                lambda *a, h=handler, **k: real_client(transport=httpx.MockTransport(h)),
            )
            monkeypatch.setenv("WATTWISE_ELECTRICITYMAPS_TOKEN", TOKEN)
            monkeypatch.setenv("WATTWISE_CONFIG", str(tmp_path / "config.toml"))
            app = typer.Typer()
            app.add_typer(carbon_app, name="carbon")
            for extra in ([], ["--json"]):
                result = CliRunner().invoke(
                    app, ["carbon", "intensity", "--zone", "DE", "--live", *extra]
                )
                assert result.exit_code == 0, result.output
                seen.append(result.output)
    captured = capsys.readouterr()
    seen.extend([captured.out, captured.err, caplog.text])
    seen.extend(record.getMessage() for record in caplog.records)
    assert all(TOKEN not in text for text in seen)
    assert any("HTTP 429" in text for text in seen)  # the scenarios did run
