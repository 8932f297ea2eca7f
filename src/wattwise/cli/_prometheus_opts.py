"""The ``--prometheus [ADDR:]PORT`` option of ``wattwise run``."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from wattwise._errors import ConfigError
from wattwise._extras import require
from wattwise.cli._common import fail
from wattwise.tracking._live import PROMETHEUS_PORT_ENV, prometheus_address

__all__ = ["PrometheusOpt", "child_env", "prometheus_option"]

PrometheusOpt = Annotated[
    str | None,
    typer.Option(
        "--prometheus",
        metavar="[ADDR:]PORT",
        help="Serve the run's live power and energy to Prometheus on this port (or "
        "ADDR:PORT; default: every interface) while CMD runs; the environment can ask "
        "too (docs/monitoring.md).",
        show_default=False,
    ),
]


def prometheus_option(value: str | None) -> str | None:
    """What ``Tracker(prometheus=...)`` gets, checked first: one line for a bad port or a
    missing extra (``WATTWISE_PROMETHEUS_PORT`` asks when the option is not given)."""
    what = "--prometheus" if value is not None else PROMETHEUS_PORT_ENV
    try:
        if prometheus_address(value, os.environ, what=what) is not None:
            require("wattwise run --prometheus", "prometheus")
    except ConfigError as exc:
        fail(str(exc))
    return value


def child_env(prometheus: int | str | None) -> dict[str, str] | None:
    """The command's environment: ours, less the Prometheus port when this run serves on it
    (a wattwise in the command would otherwise ask for the same port)."""
    if prometheus is None and not os.environ.get(PROMETHEUS_PORT_ENV):
        return None
    return {k: v for k, v in os.environ.items() if k != PROMETHEUS_PORT_ENV}
