"""Bad input and misleading answers, end to end: report extensions and `runs compare`."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from tests._cli import one_error_line, wattwise

from wattwise._records import Scope
from wattwise.carbon import resolve_location
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.store import RunStore
from wattwise.tracking._tracker import Tracker


@pytest.mark.parametrize(
    ("out", "extra", "needle"),
    [
        ("r.pdf", [], "--out r.pdf has extension '.pdf': a report is written as .html, .htm"),
        ("report", [], "--out report has no extension"),
        ("r.html", ["--format", "md"], "--format md contradicts --out r.html, which is html"),
    ],
)
def test_report_refuses_an_extension_it_would_not_honour(
    child_env: dict[str, str], tmp_path: Path, out: str, extra: list[str], needle: str
) -> None:
    target = tmp_path / out
    proc = wattwise(child_env, "report", "--last", "--out", str(target), *extra)
    assert proc.returncode == 2
    line = one_error_line(proc).replace(str(tmp_path) + "/", "")
    assert needle in line
    assert not target.exists()


def _replayed(store: RunStore, name: str, energy_j: float, zone: str, scope: Scope) -> str:
    """A stored run of exactly ``energy_j`` (±30 %, estimated), in ``zone``."""
    cpu = Component(
        "cpu", ComponentKind.CPU, Source(Method.ESTIMATED, "model"), relative_uncertainty=0.3
    )
    # Nothing at first, so none of the energy falls before the tracker's first read.
    intervals = [TraceInterval("cpu", 0.0, 0.05, 0.0), TraceInterval("cpu", 0.05, 0.1, energy_j)]
    meter = ReplayMeter([cpu], intervals)
    tracker = Tracker(
        name,
        meters=[meter],
        store=store,
        interval_s=0.02,
        scope=scope,
        intensity=resolve_location(zone),
    )
    with tracker:
        time.sleep(0.25)
    return tracker.run_id


def test_runs_compare_says_within_uncertainty_and_flags_differences(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    store = RunStore.open(str(tmp_path / "runs.sqlite"))
    try:
        a = _replayed(store, "a", 100.0, "FR", Scope.MACHINE)
        b = _replayed(store, "b", 165.0, "DE", Scope.MACHINE)  # 165 ± 49.5 meets 100 ± 30
        c = _replayed(store, "c", 400.0, "FR", Scope.MACHINE)
        url = store.display_url
    finally:
        store.close()
    env = dict(child_env, WATTWISE_STORE=url)
    proc = wattwise(env, "runs", "compare", a[:8], b[:8], c[:8])
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert f"b ({b[:8]}) used the same energy as a ({a[:8]}) within uncertainty" in text
    assert "1.65x" not in text
    assert f"not like for like: zone DE here, FR in a ({a[:8]})" in text
    assert re.search(rf"c \({c[:8]}\) used 4\.00x the energy of a \({a[:8]}\)", text)
    assert "beyond the uncertainty" in text

    rows = json.loads(wattwise(env, "runs", "compare", a[:8], b[:8], c[:8], "--json").stdout)
    assert rows[0]["vs_first"] is None
    assert rows[1]["vs_first"]["within_uncertainty"] is True
    assert rows[1]["vs_first"]["energy_ratio"] == pytest.approx(1.65, rel=0.01)
    assert rows[1]["vs_first"]["differs"] == {"zone": ["FR", "DE"]}
    assert rows[2]["vs_first"] == {
        "energy_ratio": pytest.approx(4.0, rel=0.01),
        "within_uncertainty": False,
        "differs": {},
    }
    assert {r["scope"] for r in rows} == {"machine"}


def _trace_file(tmp_path: Path, name: str = "de.csv") -> Path:
    path = tmp_path / name
    body = "".join(f"2020-01-01 {h:02d}:00,{100 + h}\n" for h in range(6))
    path.write_text("Time,Carbon Intensity\n" + body, encoding="utf-8")
    return path


WINDOW = ["--start", "2020-01-01T00:00", "--deadline", "2020-01-01T06:00"]


@pytest.mark.parametrize(
    ("traces", "extra", "needle"),
    [
        (["{p}", "{p}"], [], "zone 'de' is given twice"),
        (["=" + "{p}"], [], "is not [ZONE=]PATH"),
        (["{dir}"], [], "is a directory, not a trace file"),
        (["{p}"], ["--duration", "0s"], "duration '0s' for --duration is out of range"),
        (["{p}"], ["--duration", "1h", "--step", "9999d"], "for --step is out of range"),
        (["{p}"], ["--duration", "1h", "--power-w", "inf"], "at most 1e+09 W (1 GW)"),
        (["{p}"], ["--duration", "1h", "--energy-j", "1e20"], "more than 1e+09 W (1 GW)"),
    ],
)
def test_schedule_bad_input_is_one_line(
    child_env: dict[str, str], tmp_path: Path, traces: list[str], extra: list[str], needle: str
) -> None:
    path = _trace_file(tmp_path)
    args = ["schedule"]
    for spec in traces:
        args += ["--trace", spec.format(p=path, dir=tmp_path)]
    if "--duration" not in extra:
        extra = ["--duration", "1h", *extra]
    proc = wattwise(child_env, *args, *extra, *WINDOW)
    assert proc.returncode == 2
    assert needle in one_error_line(proc)
    assert proc.stdout == ""


@pytest.mark.parametrize("min_time_s", [float("nan"), float("inf"), -1.0, 1e9])
def test_a_measuring_window_that_would_never_end_is_refused(min_time_s: float) -> None:
    from wattwise._errors import ConfigError
    from wattwise.protocol import Protocol

    with pytest.raises(ConfigError, match="between 0 and 3600 s"):
        Protocol(min_time_s=min_time_s)  # refused before any window is measured
