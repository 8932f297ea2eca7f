"""`wattwise demo --quick` end to end: every lever measured, a report written, runs stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.mark.slow
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
    assert "KernelPreference" not in proc.stderr and "_pytree" not in proc.stderr

    data = json.loads((out / "demo.json").read_text())
    assert data["dataset"].startswith("mnist1d")
    headline = data["headline"]
    assert headline["text"].startswith("On this workload (mnist1d")
    assert "the levers cut training energy by" in proc.stdout
    levers = {row["lever"].split(":")[0].split(" (")[0]: row for row in data["levers"]}
    assert len(data["levers"]) == 7
    assert {"stop by the learning curve", "architecture", "transfer learning"} <= set(levers)
    assert any(k.startswith("int8") for k in levers) and any(
        k.startswith("batching") for k in levers
    )
    for row in data["levers"]:
        assert row["baseline_value"] > 0 and row["lever_value"] > 0
        assert row["source"] and row["spread"] and row["group"]
        # The saving is computed from the two measured figures, not asserted.
        assert row["saving_frac"] == pytest.approx(1 - row["lever_value"] / row["baseline_value"])
    assert "estimated" in data["energy_source"] or "measured" in data["energy_source"]
    assert levers["stop by the learning curve"]["unit"] == "J"
    assert [r["unit"] for r in data["levers"]].count("gCO2e") == 1
    # The headline's two figures are the means of the rows of their group.
    for group, key in (
        ("training", "training_saving_frac"),
        ("inference", "inference_saving_frac"),
    ):
        rows = [r for r in data["levers"] if r["group"] == group]
        mean = sum(r["saving_frac"] if r["applied"] else 0.0 for r in rows) / len(rows)
        assert headline[key] == pytest.approx(mean)
    assert "mlp:depth=3,width=1024" in (out / "report.md").read_text()

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
    assert "demo: full planned run" in names and "demo: learning-curve rule" in names
    assert "demo: mnist1d 0-9 by transfer" in names
    assert "demo: architectures on mnist1d" in names or any("mnist1d" in n for n in names)
    assert all(r["status"] == "completed" for r in json.loads(listed.stdout))


def test_carbon_timing_is_a_fixed_scenario_that_saves() -> None:
    """The carbon row is the same whatever the day it runs, saves on the bundled trace and
    says what was done; every day is planned against its own start-at-once baseline."""
    from wattwise.demo import Unit
    from wattwise.demo._measure import CARBON_DEADLINE_HOURS, carbon_days, measure_carbon
    from wattwise.demo._run import savings_table
    from wattwise.demo._sections import carbon_lever

    # No clock goes in: the scenario cannot depend on the day it is run.
    scenario = measure_carbon(250.0, 70.0, lambda _msg: None)
    assert measure_carbon(250.0, 70.0, lambda _msg: None) == scenario
    outcome, section = carbon_lever(scenario)
    days = scenario.days
    assert outcome.unit is Unit.G_CO2E and outcome.to_dict()["unit"] == "gCO2e"
    assert 0.05 < outcome.saving_frac < 0.9
    assert outcome.lever_value == pytest.approx(sum(d.best_g for d in days))
    assert outcome.baseline_value == pytest.approx(sum(d.baseline_g for d in days))
    row = savings_table((outcome,)).rows[0]
    assert "17:00 UTC" in row[1] and "daily job" in row[1] and "DE" in row[1]
    assert "cleanest hour by 09:00 UTC" in row[0] and "median" in row[0]
    text = " ".join(section.paragraphs)
    assert "1 h long" in text and "due by 09:00 UTC the next morning" in text

    # Each day: the baseline starts at submission, the best start is inside the deadline.
    assert len(days) >= 360 and {d.submitted.hour for d in days} == {17}
    for d in days:
        assert d.submitted <= d.best_start
        assert (d.best_start - d.submitted).total_seconds() <= (CARBON_DEADLINE_HOURS - 1) * 3600
        assert d.best_g <= d.baseline_g * (1 + 1e-9)
    # A day's figures scale with the energy; the saving does not.
    again, _ = carbon_days(500.0, 1)
    assert [d.saving_frac for d in again] == pytest.approx([d.saving_frac for d in days])
    # The DE trace lacks 2020-12-19 23:00: that day is left out and the report says so.
    assert "12-19" in text and all(d.submitted.strftime("%m-%d") != "12-19" for d in days)


def test_a_lever_that_saved_nothing_says_why() -> None:
    from wattwise.demo import LeverOutcome
    from wattwise.demo._run import savings_table

    rows = savings_table(
        (
            LeverOutcome("a", "b", 10.0, 10.0, None, "measured", note="the rule never fired"),
            LeverOutcome("c", "d", 10.0, 12.0, None, "measured", note="int8 cost more here"),
            LeverOutcome("e", "f", 10.0, 5.0, None, "measured", note="detail"),
        )
    ).rows
    assert rows[0][4] == "0%: the rule never fired"
    assert rows[1][4] == "-20%: int8 cost more here"
    assert rows[2][4] == "50%"


def _outcome(saving: float, group: str, *, applied: bool = True) -> Any:
    from wattwise.demo import LeverOutcome

    return LeverOutcome(
        f"lever {saving}", "base", 10.0, 10.0 * (1 - saving), None, "measured",
        group=group, applied=applied,
    )  # fmt: skip


def test_the_headline_averages_each_group_and_counts_a_lever_not_applied_as_zero() -> None:
    from wattwise.demo import Headline, LeverOutcome
    from wattwise.demo._run import savings_table

    rows: tuple[LeverOutcome, ...] = (
        _outcome(0.5, "training"),
        _outcome(0.1, "training"),
        _outcome(0.3, "training", applied=False),
        _outcome(-0.2, "inference"),
        _outcome(0.6, "inference"),
        _outcome(0.25, "emissions"),
    )
    h = Headline.of(rows, "mnist1d")
    assert h.training_saving_frac == pytest.approx((0.5 + 0.1 + 0.0) / 3)
    assert h.inference_saving_frac == pytest.approx(0.2)
    assert h.emissions_saving_frac == pytest.approx(0.25)
    assert h.text == (
        "On this workload (mnist1d) the levers cut training energy by 20% and inference "
        "energy by 20%, all measured here; timing the daily job cuts its emissions by 25%."
    )
    assert "mean saving of 3 levers" in h.definition and "counts as 0" in h.definition
    assert h.to_dict()["text"] == h.text
    # The row of a lever that changed nothing reads 0 % and says why, with the noise.
    cell = savings_table((rows[2],)).rows[0][4]
    assert cell.startswith("0% (the runs differ by 30%: noise)")


def test_the_demo_quantizes_a_compute_bound_model_on_mnist1d() -> None:
    from wattwise.demo import DemoSettings

    for quick in (True, False):
        s = DemoSettings.make(quick=quick, store=False)
        assert s.quant_model == "mlp:depth=3,width=1024"
        assert s.dataset.startswith("mnist1d") and s.dataset_name == "mnist1d"
        assert "cnn1d" in s.arch_models and s.model == "cnn1d"


def test_the_demo_runs_torch_on_one_thread_and_restores_the_number() -> None:
    import torch

    from wattwise.demo._measure import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_thread():
            raise RuntimeError("a lever failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
