"""The Grafana dashboard shipped in the wheel, for the metrics of :mod:`._prometheus`."""

from __future__ import annotations

from importlib.resources import files

__all__ = ["DASHBOARD_FILE", "dashboard_json"]

#: The dashboard's file inside the package (``wattwise/monitoring/grafana/``).
DASHBOARD_FILE = "grafana/wattwise-dashboard.json"


def dashboard_json() -> str:
    """The dashboard's JSON, as Grafana imports it (Dashboards > New > Import)."""
    return (files("wattwise.monitoring") / DASHBOARD_FILE).read_text(encoding="utf-8")
