"""Prometheus export: a collector that reads runs' live snapshots at scrape time, and the
HTTP endpoint that serves it (the official ``prometheus-client``).

Nothing is computed between scrapes: each scrape asks every source (a running
:class:`~wattwise.Tracker`'s ``live``, the machine exporter's meters) for its figures now.
Names and labels follow the Prometheus conventions (base units in the name, ``_total`` on
counters; docs/monitoring.md lists them). A component in a gap has no ``wattwise_power_watts``
sample (an unknown power is never a zero) and ``wattwise_component_in_gap`` is 1.

One endpoint per address in a process: the runs of one process that ask for the same port
share it. A run that has ended stays on it, with its final figures (and its emissions), until
the next run starts there, so that the scrape after its end still sees its last figures.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wattwise._errors import ConfigError
from wattwise._records import RunStatus
from wattwise.meters._base import Method
from wattwise.tracking._live import LiveComponent, LiveRun

__all__ = [
    "COMPONENT_LABELS",
    "METRICS",
    "RUN_LABELS",
    "LiveCollector",
    "MetricsServer",
    "serve_run",
]

#: A live source: the figures of one run now (None while it has not started).
LiveSource = Callable[[], LiveRun | None]

#: Labels of every per-run series.
RUN_LABELS = ("run_id", "run_name", "scope")
#: Labels of every per-component series.
COMPONENT_LABELS = (*RUN_LABELS, "component", "kind", "device", "method", "sensor", "counted")

#: Every metric the exporter serves: name (as scraped) -> help text.
METRICS: dict[str, str] = {
    "wattwise_energy_joules_total": "Energy of a component since the run started, in J.",
    "wattwise_energy_uncertainty_joules": "Uncertainty of wattwise_energy_joules_total, in J.",
    "wattwise_power_watts": "Mean power of a component over its last reading, in W "
    "(no sample while the component is in a gap or the run has ended).",
    "wattwise_component_in_gap": "1 while a component's readings fail (its power is unknown).",
    "wattwise_gap_seconds_total": "Time a component's energy is unknown so far, in s.",
    "wattwise_run_energy_joules_total": "Counted energy of a run so far, in J.",
    "wattwise_run_energy_uncertainty_joules": "Uncertainty of a run's counted energy, in J.",
    "wattwise_run_duration_seconds": "Time a run has been measured, in s.",
    "wattwise_run_start_time_seconds": "When a run started, in s since the Unix epoch.",
    "wattwise_run_info": "1 for every run served, with its status.",
    "wattwise_run_emissions_grams": "Emissions of an ended run, or of the machine exporter so "
    "far, in gCO2e (estimated from the grid's carbon intensity).",
}


def _method(components: tuple[LiveComponent, ...]) -> str:
    """measured, estimated, or mixed: how a run's counted energy was obtained."""
    methods = {c.energy.source.method for c in components if c.energy.counted}
    if len(methods) == 1:
        return next(iter(methods)).value
    return "mixed" if methods else Method.ESTIMATED.value


_Family = CounterMetricFamily | GaugeMetricFamily


_RUN_METHOD = (*RUN_LABELS, "method")
#: The labels of each metric (a counter's name ends in ``_total``, as the conventions ask).
_LABELS: dict[str, tuple[str, ...]] = {
    "wattwise_energy_joules_total": COMPONENT_LABELS,
    "wattwise_energy_uncertainty_joules": COMPONENT_LABELS,
    "wattwise_power_watts": COMPONENT_LABELS,
    "wattwise_component_in_gap": COMPONENT_LABELS,
    "wattwise_gap_seconds_total": COMPONENT_LABELS,
    "wattwise_run_energy_joules_total": _RUN_METHOD,
    "wattwise_run_energy_uncertainty_joules": _RUN_METHOD,
    "wattwise_run_duration_seconds": RUN_LABELS,
    "wattwise_run_start_time_seconds": RUN_LABELS,
    "wattwise_run_info": (*RUN_LABELS, "status"),
    "wattwise_run_emissions_grams": (*RUN_LABELS, "zone", "method"),
}


def _family(name: str) -> _Family:
    if name.endswith("_total"):
        return CounterMetricFamily(name.removesuffix("_total"), METRICS[name], labels=_LABELS[name])
    return GaugeMetricFamily(name, METRICS[name], labels=_LABELS[name])


def add_run(families: dict[str, _Family], run: LiveRun) -> None:
    """Add one run's samples to the metric families of a scrape."""

    def add(name: str, labels: list[str], value: float) -> None:
        families[name].add_metric(labels, value)

    base = [run.run_id, run.name, run.scope.value]
    for c in run.components:
        e = c.energy
        labels = [
            *base,
            e.name,
            e.kind.value,
            "" if e.device is None else str(e.device),
            e.source.method.value,
            e.source.sensor,
            "true" if e.counted else "false",
        ]
        add("wattwise_energy_joules_total", labels, e.energy_j)
        add("wattwise_energy_uncertainty_joules", labels, e.uncertainty_j)
        add("wattwise_gap_seconds_total", labels, e.gap_s)
        add("wattwise_component_in_gap", labels, 1.0 if c.in_gap else 0.0)
        if c.power_w is not None:
            add("wattwise_power_watts", labels, c.power_w)
    method = _method(run.components)
    add("wattwise_run_energy_joules_total", [*base, method], run.energy_j)
    add("wattwise_run_energy_uncertainty_joules", [*base, method], run.uncertainty_j)
    add("wattwise_run_duration_seconds", base, run.elapsed_s)
    add("wattwise_run_start_time_seconds", base, run.started_at.timestamp())
    add("wattwise_run_info", [*base, run.status.value], 1.0)
    if run.emissions_g is not None:
        zone = run.zone or ""
        add("wattwise_run_emissions_grams", [*base, zone, Method.ESTIMATED.value], run.emissions_g)


class LiveCollector(Collector):
    """Reads its sources' live snapshots at each scrape (a custom collector)."""

    def __init__(self) -> None:
        self.sources: list[LiveSource] = []
        self._lock = threading.Lock()

    def add(self, source: LiveSource) -> None:
        """Serve ``source`` too; runs that have ended make way for it."""
        with self._lock:
            self.sources = [s for s in self.sources if _running(s)]
            self.sources.append(source)

    def remove(self, source: LiveSource) -> None:
        """Stop serving ``source`` (a run whose start failed)."""
        with self._lock:
            self.sources = [s for s in self.sources if s is not source]

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name) for name in METRICS}
        with self._lock:
            sources = list(self.sources)
        for source in sources:
            run = source()
            if run is not None:
                add_run(families, run)
        yield from families.values()


def _running(source: LiveSource) -> bool:
    run = source()
    return run is None or run.status is RunStatus.RUNNING


class MetricsServer:
    """One HTTP endpoint serving ``/metrics`` from its own registry, on a daemon thread.

    Raises:
        ConfigError: the port is in use, or the address cannot be listened on.
    """

    def __init__(self, addr: str, port: int) -> None:
        self.addr, self.port = addr, port
        self.collector = LiveCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        try:
            self._server: WSGIServer
            self._server, self._thread = start_http_server(port, addr, registry=self.registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "the port is in use (choose another port)"
            else:
                why = exc.strerror or str(exc)
            raise ConfigError(f"cannot serve Prometheus metrics on {addr}:{port}: {why}") from None

    @property
    def url(self) -> str:
        """Where Prometheus scrapes it."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


_servers: dict[tuple[str, int], MetricsServer] = {}
_servers_lock = threading.Lock()


def serve_run(live: LiveSource, addr: str, port: int) -> Callable[[], None]:
    """Serve a run's live figures at ``addr:port`` (sharing this process's endpoint there,
    started on first use) and return the function that stops serving this run.

    Raises:
        ConfigError: the port is in use by another process, or cannot be listened on.
    """
    with _servers_lock:
        server = _servers.get((addr, port))
        if server is None:
            server = _servers[(addr, port)] = MetricsServer(addr, port)
    server.collector.add(live)
    return lambda: server.collector.remove(live)
