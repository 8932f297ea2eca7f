"""The ``--prometheus-port`` / ``--prometheus-addr`` options of ``wattwise run``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from wattwise._errors import ConfigError
from wattwise._extras import require
from wattwise.cli._common import fail
from wattwise.tracking._live import PROMETHEUS_PORT_ENV, prometheus_address

__all__ = ["PrometheusAddrOpt", "PrometheusPortOpt", "child_env", "prometheus_option"]

PrometheusPortOpt = Annotated[
    int | None,
    typer.Option(
        "--prometheus-port",
        help="Serve the run's live power and energy to Prometheus on this port "
        f"(default: {PROMETHEUS_PORT_ENV}, else nothing is served).",
        show_default=False,
    ),
]
PrometheusAddrOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus-addr",
        help="The address it listens on (default: WATTWISE_PROMETHEUS_ADDR, else every "
        "interface; 127.0.0.1 keeps it on this machine).",
        show_default=False,
    ),
]


def prometheus_option(port: int | None, addr: str | None) -> str | None:
    """What ``Tracker(prometheus=...)`` gets, checked first: one line for a bad port, a
    missing extra, or an address without a port."""
    value: str | None = None
    if port is not None:
        value = f"{addr}:{port}" if addr else str(port)
    elif addr:
        if not os.environ.get(PROMETHEUS_PORT_ENV):
            fail(
                f"--prometheus-addr needs a port: add --prometheus-port PORT (or set "
                f"{PROMETHEUS_PORT_ENV})"
            )
        value = f"{addr}:{os.environ[PROMETHEUS_PORT_ENV].rpartition(':')[2]}"
    what = "--prometheus-port" if port is not None else PROMETHEUS_PORT_ENV
    try:
        if prometheus_address(value, os.environ, what=what) is not None:
            require("wattwise run --prometheus-port", "prometheus")
    except ConfigError as exc:
        fail(str(exc))
    return value


def child_env(prometheus: int | str | None) -> dict[str, str] | None:
    """The command's environment: ours, less the Prometheus port when this run serves on it
    (a wattwise in the command would otherwise ask for the same port)."""
    if prometheus is None and not os.environ.get(PROMETHEUS_PORT_ENV):
        return None
    return {k: v for k, v in os.environ.items() if k != PROMETHEUS_PORT_ENV}
