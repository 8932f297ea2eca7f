"""The Grafana dashboard queries only what the exporter serves: every metric and label in its
PromQL, compared against real scrapes of a running and of an ended run."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from tests.test_prometheus import LOOPBACK, free_port, scrape

import wattwise
from wattwise.meters._rapl import RaplMeter
from wattwise.monitoring import DASHBOARD_FILE, dashboard_json
from wattwise.testing import FakeClock
from wattwise.testing._fake_powercap import FakePowercap

ROOT = Path(__file__).resolve().parents[1]
#: Labels Prometheus itself adds to every series it scrapes (the target's).
TARGET_LABELS = {"instance", "job"}
_METRIC = re.compile(r"\bwattwise_[a-z_]+\b")
_LABEL_LISTS = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_LABEL_VALUES = re.compile(r"label_values\([^,]*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """Every PromQL expression of the dashboard with its legend (panels and variables)."""
    found = [
        (t["expr"], t.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for t in panel.get("targets", [])
    ]
    for var in dashboard["templating"]["list"]:
        query = var["query"]
        found.append((query["query"] if isinstance(query, dict) else query, ""))
    return found


def labels_used(expr: str, legend: str) -> set[str]:
    used = {name for group in _LABEL_LISTS.findall(expr) for name in group.split(",")}
    used |= set(_MATCHER.findall(expr)) | set(_LABEL_VALUES.findall(expr))
    used |= set(_LEGEND.findall(legend))
    return {u.strip() for u in used if u.strip()}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Each metric served, with its label names: a scrape during a run and one after it."""
    monkeypatch.setenv("WATTWISE_ZONE", "FR")
    fake = FakePowercap(tmp_path / "sys")
    pkg = fake.add_socket(dram=False, core=False)
    clock = FakeClock()
    port = free_port()
    meter = RaplMeter(root=fake.root)
    with wattwise.track(
        "dash", meters=[meter], store=False, clock=clock, prometheus=f"{LOOPBACK}:{port}"
    ):
        fake.advance(pkg, 2.0)
        clock.advance(1.0)
        samples = scrape(port)
    samples += scrape(port)
    out: dict[str, set[str]] = {}
    for s in samples:
        out.setdefault(s.name, set()).update(s.labels)
    return out


def test_every_metric_and_label_the_dashboard_queries_is_served(
    served: dict[str, set[str]],
) -> None:
    dashboard = json.loads(dashboard_json())
    seen: set[str] = set()
    for expr, legend in queries(dashboard):
        metrics = set(_METRIC.findall(expr))
        assert metrics, f"a query names no wattwise metric: {expr}"
        unknown = metrics - served.keys()
        assert not unknown, f"{expr} queries {unknown}, which the exporter does not serve"
        labels = set().union(*(served[m] for m in metrics)) | TARGET_LABELS
        missing = labels_used(expr, legend) - labels
        assert not missing, f"{expr} ({legend}) uses labels {missing} that are not served"
        seen |= metrics
    # The panels the issue asks for: power per component, energy per run, emissions, with
    # how each figure was obtained shown.
    assert {
        "wattwise_power_watts",
        "wattwise_run_energy_joules_total",
        "wattwise_run_emissions_grams",
    } <= seen
    legends = [legend for _, legend in queries(dashboard) if legend]
    power_legend = next(lg for e, lg in queries(dashboard) if "wattwise_power_watts" in e)
    assert "{{method}}" in power_legend and "{{sensor}}" in power_legend
    assert sum("{{method}}" in lg for lg in legends) >= 3


def test_the_dashboard_is_packaged_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["wattwise"]
    assert any(fnmatch.fnmatch(f"monitoring/{DASHBOARD_FILE}", p) for p in patterns)
    dashboard = json.loads(dashboard_json())
    assert dashboard["uid"] == "wattwise" and dashboard["panels"]
    # Imported into any Grafana: the data source is an input, not a uid of ours.
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
