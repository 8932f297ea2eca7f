"""Reports: content with provenance, escaping, self-containment, and a real headless browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from wattwise._records import RunResult
from wattwise.carbon import resolve_location
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.report import Report, render, run_sections, study_sections, write_report
from wattwise.store import RunStore
from wattwise.tracking._tracker import Tracker

CPU = Component("cpu:package-0", ComponentKind.CPU, Source(Method.MEASURED, "rapl-powercap"))
CORE = Component(
    "cpu:core-0", ComponentKind.CPU_CORE, Source(Method.MEASURED, "rapl-powercap"), counted=False
)
EVIL = "<script>alert('x')</script> *bold* | pipe"


def tracked_run(store: RunStore, name: str = EVIL) -> RunResult:
    intervals = [
        TraceInterval(CPU.name, 0.0, 0.15, 3.0),
        TraceInterval(CPU.name, 0.15, 0.25, None),  # a recorded gap
        TraceInterval(CPU.name, 0.25, 100.0, 20.0 * 99.75),
        TraceInterval(CORE.name, 0.0, 100.0, 1000.0),
    ]
    t = Tracker(
        name,
        meters=[ReplayMeter([CPU, CORE], intervals)],
        store=store,
        interval_s=0.03,
        intensity=resolve_location("FR"),
    )
    with t:
        for epoch in (1, 2, 3):
            with t.window(f"epoch-{epoch}"):
                time.sleep(0.08)
    assert t.result is not None
    return store.get_run(t.run_id, with_samples=True)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore.open(str(tmp_path / "r.sqlite"))


def test_run_report_says_what_was_measured_and_escapes_names(store: RunStore) -> None:
    result = tracked_run(store)
    doc = Report(f"wattwise run: {result.name}", "sub", run_sections(result))
    html = render(doc, "html")
    assert "&lt;script&gt;" in html
    assert "<script>alert" not in html
    assert "<script" not in html  # self-contained and script-free
    # No external resources: sources are cited as text, nothing is fetched.
    for attr in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert attr not in html
    assert "measured (rapl-powercap)" in html
    assert "part of another component, not added" in html  # the core sub-component
    assert "energy lost" in html  # the gap is listed, not hidden
    assert "lower bound" in html
    assert "gCO2e" in html and "FR" in html
    assert html.count("<svg") >= 2  # timeline + energy per epoch
    md = render(doc, "md")
    assert "\\<script\\>" in md and "\\*bold\\*" in md and "\\| pipe" in md
    assert "data:image" not in md and "](report_files/chart-1.png)" in md


def test_markdown_report_links_png_files_and_captions_outside_tables(
    store: RunStore, tmp_path: Path
) -> None:
    from markdown_it import MarkdownIt

    result = tracked_run(store, "md [check]")
    doc = Report(f"wattwise run: {result.name}", "sub", run_sections(result))
    stale = tmp_path / "my run_files" / "chart-9.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    path = write_report(doc, tmp_path / "my run.md")
    md = path.read_text()
    assert "data:image" not in md and len(md) < 20_000

    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    images = [
        child.attrGet("src")
        for t in tokens
        if t.type == "inline"
        for child in t.children or ()
        if child.type == "image"
    ]
    assert images == ["my%20run_files/chart-1.png", "my%20run_files/chart-2.png"]
    files = sorted((tmp_path / "my run_files").iterdir())
    assert [f.name for f in files] == ["chart-1.png", "chart-2.png"]  # the stale one is gone
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(str(f)).shape[0] > 100  # decodes, and is a real plot

    # Every caption is a paragraph of its own, never a row of the table above it.
    in_table = False
    cells: list[str] = []
    paragraphs: list[str] = []
    last_open = ""
    for t in tokens:
        if t.type in ("table_open", "table_close"):
            in_table = t.type == "table_open"
        elif t.type.endswith("_open"):
            last_open = t.type
        elif t.type == "inline":
            (cells if in_table else paragraphs if last_open == "paragraph_open" else []).append(
                t.content
            )
    captions = [p for p in paragraphs if p.startswith("_")]
    assert "_Everyday equivalents of the emissions above._" in captions
    assert any(p.startswith("_Figure 1: Power over time") for p in captions)
    assert not any("Everyday equivalents" in c or "Figure" in c for c in cells)


def _architecture_study() -> Any:
    """An architecture study written by hand: three models, two on the front."""
    from wattwise.studies import ArchitectureStudy, ModelResult, RepeatedRuns, Saving, Trial

    def model(name: str, params: int, energy_j: float, acc: float, pareto: bool) -> Any:
        trial = Trial(name, 1, 0, f"run-{name}", energy_j, 1.0, 2.0, acc, 3, "measured", "done")
        return ModelResult(
            name, params, 2 * params, 6 * params, RepeatedRuns(name, (trial,)), pareto, None
        )

    models = (
        model("mlp", 1000, 10.0, 0.9, True),
        model("cnn", 9000, 30.0, 0.97, True),
        model("big", 90000, 50.0, 0.95, False),
    )
    saving = Saving("cnn", "cnn", 2.0, 30.0, 30.0, 0.97, 0.97, None, "measured (rapl-powercap)")
    return ArchitectureStudy(
        "a" * 32, "digits <b>", "digits", {"epochs": 3}, {"repeats": 1}, models, "cnn", saving
    )


def test_study_report_draws_the_pareto_front_from_the_typed_record(store: RunStore) -> None:
    pytest.importorskip("torch")
    r = tracked_run(store, "m")
    study = _architecture_study()
    store.create_study(study_id=study.study_id, kind="architectures", name=study.name, params={})
    store.add_study_run(study.study_id, r.run_id, label="mlp", attributes={})
    store.finish_study(study.study_id, study.to_dict())
    html = render(Report("t", "s", study_sections(store.get_study("aaaa"))), "html")
    assert "digits &lt;b&gt;" in html
    assert html.count("<svg") == 1  # the front, from ArchitectureStudy.charts()
    assert ">big<" in html and "Energy against validation accuracy per model" in html


def test_study_results_of_no_known_record_get_tables_and_no_plots(store: RunStore) -> None:
    """Results stored without a kind, or by another schema version, are still reported: as
    tables (their keys as columns), without the plots only a typed record gives."""
    pytest.importorskip("torch")
    old = {**_architecture_study().to_dict(), "schema_version": 1}
    for study_id, results in (
        ("b" * 32, {"models": [{"model": "mlp"}], "ratio": 0.66}),
        ("c" * 32, old),
    ):
        store.create_study(study_id=study_id, kind="architectures", name="n", params={})
        store.finish_study(study_id, results)
        html = render(Report("t", "s", study_sections(store.get_study(study_id))), "html")
        assert "<svg" not in html and ">mlp<" in html


def test_report_of_a_stored_batching_study_plots_its_policies(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    """End to end: ``wattwise report --study`` loads the stored results as BatchingResult
    (importing the package of the study's kind) and draws its bars."""
    from wattwise.infer import BatchingResult, PolicyResult

    def policy(label: str, size: int, energy_j: float) -> PolicyResult:
        return PolicyResult(
            label,
            size,
            None,
            False,
            10,
            10 // size,
            energy_j,
            0.1,
            None,
            2.0,
            1.0,
            (0.01, 0.02, 0.03),
            0.015,
            "estimated (cpu-model)",
        )

    result = BatchingResult(
        "cnn",
        "cpu",
        "virtual",
        "jitter",
        5.0,
        0.2,
        10,
        0,
        None,
        None,
        (policy("batch=1", 1, 5.0), policy("batch=5", 5, 2.0)),
        "batch=5",
        "lowest",
        "process",
        "estimated (cpu-model)",
        "run",
    )
    path = tmp_path / "s.sqlite"
    st = RunStore.open(str(path))
    st.create_study(study_id="d" * 32, kind="batching", name="b", params={})
    st.finish_study("d" * 32, result.to_dict())
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "report", "--study", "dddd", "--out", str(out)],
        env=dict(child_env, WATTWISE_STORE=str(path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert html.count("<svg") == 1 and "Energy per request of each batching policy" in html
    assert "energy_per_item_j" in html  # the policies' table, with the one name


def test_unknown_format_from_suffix_is_a_clear_error(tmp_path: Path) -> None:
    from wattwise._errors import ConfigError

    with pytest.raises(ConfigError, match="format"):
        write_report(Report("t", "s", ()), tmp_path / "r.pdf")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(
    store: RunStore, tmp_path: Path, child_env: dict[str, str]
) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI must install it (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    tracked_run(store, "browser <check>")
    out = tmp_path / "report.html"
    env = dict(child_env, WATTWISE_STORE=store.display_url)
    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "report", "--last", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "shot.png"
    browser_proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,1400",
            f"--screenshot={shot}",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), browser_proc.stderr[-2000:]
    console = [ln for ln in browser_proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    pixels = np.asarray(imread(str(shot)))
    assert pixels.std() > 0.05, "the screenshot is blank"
    # Dark text and the green headings are on the page, not only the background.
    assert (pixels[..., :3].mean(axis=-1) < 0.3).mean() > 0.002


def test_runs_compare_json(store: RunStore, child_env: dict[str, str]) -> None:
    a = tracked_run(store, "a")
    b = tracked_run(store, "b")
    env = dict(child_env, WATTWISE_STORE=store.display_url)
    proc = subprocess.run(
        [sys.executable, "-m", "wattwise", "runs", "compare", a.run_id[:8], b.run_id[:8], "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["run_id"] for r in rows] == [a.run_id, b.run_id]
    assert rows[0]["energy_j"] == pytest.approx(a.energy_j)
    assert rows[0]["sources"] == ["measured (rapl-powercap)"]
    assert rows[0]["emissions_g"] == pytest.approx(a.carbon.emissions_g if a.carbon else -1)
    one = subprocess.run(
        [sys.executable, "-m", "wattwise", "runs", "compare", a.run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert one.returncode == 2 and "at least two" in one.stderr


@pytest.mark.slow
def test_training_run_report_shows_accuracy_per_epoch_and_the_stop(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from markdown_it import MarkdownIt

    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite"))

    def wattwise(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "wattwise", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    trained = wattwise(
        "train", "--model", "mlp", "--epochs", "30", "--stop", "target:0.9", "--json"
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    fit = json.loads(trained.stdout)
    assert fit["stopped_early"] and fit["stop_rule"] == "target" and len(fit["epochs"]) >= 2
    made = wattwise("report", fit["run_id"][:10], "--out", str(tmp_path / "r.md"))
    assert made.returncode == 0, made.stderr
    md = (tmp_path / "r.md").read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    text = MarkdownIt("commonmark").enable("table").render(md)
    assert "<h2>Training</h2>" in text
    assert f"Ended: {fit['stop_reason']}." in text and "Stop rules: TargetAccuracy(0.9)." in text
    assert "status stopped early" in text
    header = [t.content for t in tokens if t.type == "inline"]
    start = header.index("epoch", header.index("Training"))
    assert header[start : start + 6] == [
        "epoch", "val accuracy", "val loss", "train loss", "energy", "time",
    ]  # fmt: skip
    cells = header[start + 6 : start + 6 + 6 * len(fit["epochs"])]
    for i, epoch in enumerate(fit["epochs"]):
        row = cells[6 * i : 6 * i + 6]
        assert row[0] == str(epoch["epoch"])
        assert row[1] == f"{epoch['val_accuracy']:.4f}"
        assert row[2] == f"{epoch['val_loss']:.4f}"
    html = wattwise("report", fit["run_id"], "--out", str(tmp_path / "r.html"))
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "r.html").read_text()
    assert "<h2>Training</h2>" in page and "val accuracy" in page
