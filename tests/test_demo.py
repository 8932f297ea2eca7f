"""`wattwise demo --quick` end to end: every lever measured, a report written, runs stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_quick_demo_measures_each_lever_and_writes_the_report(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    store = tmp_path / "demo.sqlite"
    env = dict(child_env, WATTWISE_STORE=str(store), COLUMNS="160")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "demo", "--quick", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "What each lever saved" in proc.stdout
    assert "Report:" in proc.stdout

    data = json.loads((out / "demo.json").read_text())
    levers = {row["lever"].split(":")[0].split(" (")[0]: row for row in data["levers"]}
    assert len(data["levers"]) == 7
    assert {"stop at a plateau", "architecture", "transfer learning"} <= set(levers)
    assert any(k.startswith("int8") for k in levers) and any(
        k.startswith("batching") for k in levers
    )
    for row in data["levers"]:
        assert row["baseline_value"] > 0 and row["lever_value"] > 0
        assert row["source"]
        # The saving is computed from the two measured figures, not asserted.
        assert row["saving_frac"] == pytest.approx(1 - row["lever_value"] / row["baseline_value"])
    assert "estimated" in data["energy_source"] or "measured" in data["energy_source"]
    assert levers["stop at a plateau"]["units"] == "J"
    assert [r["units"] for r in data["levers"]].count("gCO2e") == 1

    html = (out / "report.html").read_text()
    assert "What each lever saved" in html and html.count("<svg") >= 2
    assert (out / "report.md").exists()

    listed = subprocess.run(
        [sys.executable, "-m", "wattwise", "runs", "list", "--json", "--limit", "500"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = [r["name"] for r in json.loads(listed.stdout)]
    assert "demo: full planned run" in names and "demo: plateau rule" in names
    assert "demo: digits 0-9 by transfer" in names
    assert all(r["status"] == "completed" for r in json.loads(listed.stdout))
