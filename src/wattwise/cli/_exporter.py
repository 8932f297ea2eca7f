"""``wattwise exporter``: serve this machine's power and energy to Prometheus until stopped."""

from __future__ import annotations

import os
import signal
import threading
import types
from typing import Annotated

import typer
from rich.markup import escape

from wattwise._errors import WattwiseError
from wattwise.cli._carbon_opts import CloudOpt, ZoneOpt, resolve_run_location
from wattwise.cli._common import err_console, fail, need
from wattwise.cli._meters import check_cpu_settings
from wattwise.cli._run import MAX_INTERVAL_S, MIN_INTERVAL_S
from wattwise.tracking._live import prometheus_address

__all__ = ["DEFAULT_EXPORTER_PORT", "exporter"]

#: The port ``wattwise exporter`` listens on by default.
DEFAULT_EXPORTER_PORT = 9477


def exporter(
    port: Annotated[
        int, typer.Option(help="The port Prometheus scrapes (/metrics).")
    ] = DEFAULT_EXPORTER_PORT,
    addr: Annotated[
        str | None,
        typer.Option(
            help="The address to listen on (default: WATTWISE_PROMETHEUS_ADDR, else every "
            "interface; 127.0.0.1 keeps it on this machine).",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[float, typer.Option(help="How often the meters are read, in s.")] = 1.0,
    zone: ZoneOpt = None,
    cloud: CloudOpt = None,
    cpu_tdp_w: Annotated[
        float | None,
        typer.Option("--cpu-tdp-w", help="Your CPU's TDP in W (overrides the table)."),
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard", help="Print the Grafana dashboard (JSON) for these metrics and exit."
        ),
    ] = False,
) -> None:
    """Serve this machine's power and energy per component to Prometheus until interrupted.

    Machine scope: everything the meters see, since the exporter started; emissions at
    the zone's bundled intensity (--zone, WATTWISE_ZONE, config, else the world). Runs of
    `wattwise run --prometheus PORT` serve their own figures; see docs/monitoring.md.
    """
    need("wattwise exporter", "prometheus")
    from wattwise.monitoring import MachineMonitor, MetricsServer, dashboard_json

    if dashboard:
        typer.echo(dashboard_json(), nl=False)
        return
    if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:  # also refuses NaN
        fail(
            f"--interval {interval:g} is out of range: it must be between "
            f"{MIN_INTERVAL_S:g} s and {MAX_INTERVAL_S:g} s"
        )
    check_cpu_settings(cpu_tdp_w)
    location = resolve_run_location(zone, cloud, live=False)
    spec = f"{addr}:{port}" if addr else str(port)
    address = prometheus_address(spec, os.environ, what="--port")
    assert address is not None
    stop = threading.Event()

    def interrupt(_signum: int, _frame: types.FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = MetricsServer(*address)
        try:
            monitor = MachineMonitor(interval_s=interval, cpu_tdp_w=cpu_tdp_w, location=location)
        except WattwiseError:
            server.close()
            raise
        server.collector.add(monitor.live)
        for warning in monitor.warnings:
            err_console.print(f"[yellow]note:[/] {escape(warning)}", highlight=False)
        names = ", ".join(f"{c.name} ({c.source.label()})" for c in monitor.components)
        err_console.print(
            f"serving {escape(names)} at {escape(server.url)} every {monitor.interval_s:g} s "
            "(Ctrl-C to stop)",
            highlight=False,
        )
        while not stop.wait(1.0):
            pass
        monitor.close()
        server.close()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    err_console.print("stopped", highlight=False)
