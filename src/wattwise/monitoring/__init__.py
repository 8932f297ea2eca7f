"""Monitoring: live figures for Prometheus (a collector read at scrape time, its HTTP
endpoint, the machine exporter's meters) and the Grafana dashboard of those metrics.

Needs ``wattwise[prometheus]``: importing it without ``prometheus-client`` is one line
naming the extra. Trackers serve here only when asked (``prometheus=`` or
``WATTWISE_PROMETHEUS_PORT``): see docs/monitoring.md.
"""

from wattwise._extras import require as _require

_require("Prometheus export", "prometheus")

from wattwise.monitoring._dashboard import DASHBOARD_FILE, dashboard_json
from wattwise.monitoring._machine import MACHINE_RUN_ID, MachineMonitor
from wattwise.monitoring._prometheus import (
    COMPONENT_LABELS,
    METRICS,
    RUN_LABELS,
    LiveCollector,
    MetricsServer,
    serve_run,
)

__all__ = [
    "COMPONENT_LABELS",
    "DASHBOARD_FILE",
    "MACHINE_RUN_ID",
    "METRICS",
    "RUN_LABELS",
    "LiveCollector",
    "MachineMonitor",
    "MetricsServer",
    "dashboard_json",
    "serve_run",
]
