"""``wattwise infer batching | quantize`` and ``wattwise zoo`` through the commands: JSON,
studies in a real SQLite store, human output and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("torchvision")

import typer  # noqa: E402
from tests._cli import one_error_line, wattwise  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise._records import load_record  # noqa: E402
from wattwise.cli import _infer as infer_cli  # noqa: E402
from wattwise.cli import _zoo as zoo_cli  # noqa: E402
from wattwise.infer import BatchingResult, BatchingSweep  # noqa: E402
from wattwise.store import RunStore  # noqa: E402

#: A constant 20 W on the CPU for ten hours, as ``wattwise runs export --format csv`` writes.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)
SOURCE = "estimated (replay of cpu-model)"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(infer_cli.infer_app, name="infer")
    app.command("zoo")(zoo_cli.zoo)
    return app


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    """Run the commands with ``--meters replay:`` a constant 20 W trace and the test's
    default store."""
    torch.set_num_threads(1)
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    runner = CliRunner()
    return lambda *args: runner.invoke(_app(), [*args, "--meters", f"replay:{trace}"])


def _study(study_id: str) -> Any:
    with RunStore.open(None) as store:  # the test's temporary default store
        return store.get_study(study_id)


def test_batching_json_and_its_study(cli: Any) -> None:
    r = cli(
        "infer", "batching", "--model", "mlp", "--rate", "400", "--requests", "24",
        "--batch-sizes", "1,4,greedy", "--max-wait-ms", "10", "--slo-ms", "500",
        "--idle-s", "0.2", "--min-time-s", "0", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [p["policy"] for p in d["policies"]] == ["batch=1", "batch=4 wait=10ms", "greedy<=64"]
    for p in d["policies"]:
        assert {"policy", "max_batch_size", "energy_per_item_j", "p95_ms", "throughput_rps"} <= set(
            p
        )
        assert p["source"] == SOURCE
        assert p["energy_per_item_j"] == pytest.approx(p["energy_j"] / 24)
    # the tuner ranks by J/request net of idle when idle was measured
    assert d["best"] == min(d["policies"], key=lambda p: p["net_energy_per_item_j"])["policy"]
    assert d["threads"] == 1 and d["clock"] == "real" and d["slo_ms"] == 500
    study = _study(d["study_id"])
    assert study.kind == "batching" and study.params["rate_rps"] == 400
    assert [s.run_id for s in study.runs] == [d["run_id"]]
    assert study.results["policies"] == d["policies"]
    # The stored results load back as the typed record their kind names.
    assert (d["kind"], d["schema_version"]) == ("batching", 1)
    typed = load_record(study.results)
    assert isinstance(typed, BatchingResult) and typed.best == d["best"]
    assert [p.max_batch_size for p in typed.policies] == [1, 4, 64]
    with RunStore.open(None) as store:
        run = store.get_run(d["run_id"])
    names = [w.name for w in run.windows]
    assert names == ["idle before", *(f"policy {p['policy']}" for p in d["policies"]), "idle after"]
    for w, p in zip(run.windows[1:-1], d["policies"], strict=True):  # the replayed 20 W
        assert w.energy_j == pytest.approx(20.0 * w.duration_s, rel=1e-6)
        assert p["energy_j"] == pytest.approx(w.energy_j)
        # idle costs the same 20 W: serving adds nothing net of idle
        assert p["net_energy_j"] == pytest.approx(0.0, abs=1e-6)
    assert d["measured_idle"]["power_w"] == pytest.approx(20.0)
    assert d["tuned_for"]["rate_rps"] == 400 and "tuned for 400 req/s" in d["best_reason"]


def test_batching_prints_a_table_with_the_pick(cli: Any) -> None:
    r = cli(
        "infer", "batching", "--model", "mlp", "--rate", "500", "--requests", "10",
        "--batch-sizes", "1,2", "--clock", "virtual", "--idle-power-w", "3",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "J/request" in r.stdout and "best " in r.stdout and "virtual time" in r.stdout
    assert "net J/req" in r.stdout and "tuned for 500 req/s" in r.stdout


def test_batching_sweep_json_plot_and_study(cli: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    r = cli(
        "infer", "batching", "--model", "mlp", "--rates", "20000,200", "--requests", "30",
        "--batch-sizes", "1,4", "--max-wait-ms", "5", "--idle-s", "0", "--min-time-s", "0",
        "--plot", str(tmp_path / "plots"), "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["kind"], d["clock"]) == ("batching-sweep", "virtual")  # virtual by default
    assert [x["rate_rps"] for x in d["results"]] == [200, 20000]
    assert [row["rate_rps"] for row in d["rows"]] == [200, 20000]
    assert d["rows"][1]["batch1_busy_share"] > d["rows"][0]["batch1_busy_share"]
    assert [Path(p).name for p in d["plots"]] == ["batching_vs_load.png"]
    assert Path(d["plots"][0]).stat().st_size > 1000
    study = _study(d["study_id"])
    assert study.kind == "batching-sweep" and study.params["rates_rps"] == [200, 20000]
    typed = load_record(study.results)
    assert isinstance(typed, BatchingSweep) and len(typed.results) == 2


def test_batching_sweep_prints_one_row_per_rate(cli: Any) -> None:
    r = cli(
        "infer", "batching", "--model", "mlp", "--rates", "100,10000", "--requests", "20",
        "--batch-sizes", "1,4", "--max-wait-ms", "5", "--idle-s", "0.2", "--min-time-s", "0",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "busy@1" in r.stdout and "100/s" in r.stdout and "10000/s" in r.stdout
    assert "net of idle" in r.stdout


@pytest.mark.slow
def test_quantize_json_and_its_study(cli: Any) -> None:
    pytest.importorskip("torchao")
    r = cli(
        "infer", "quantize", "--model", "mlp", "--epochs", "2", "--rounds", "1",
        "--min-time-s", "0.05", "--batch-size", "32", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [v["variant"] for v in d["variants"]] == ["fp32", "int8-dynamic", "int8-static"]
    for v in d["variants"]:
        assert {"variant", "energy_per_item_j", "latency_ms", "size_bytes", "accuracy"} <= set(v)
    assert d["training"]["epochs"] == 2 and d["dataset"] == "digits"
    study = _study(d["study_id"])
    assert study.kind == "quantization" and study.results["variants"] == d["variants"]
    with RunStore.open(None) as store:
        run = store.get_run(d["run_id"])
    names = [w.name for w in run.windows]
    assert "train" in names and "int8-static round-1" in names


@pytest.mark.slow
def test_quantize_prints_each_variants_saving_with_its_spread(cli: Any) -> None:
    pytest.importorskip("torchao")
    r = cli(
        "infer", "quantize", "--model", "mlp:depth=2,width=256", "--epochs", "1",
        "--rounds", "2", "--min-time-s", "0.05", "--batch-size", "32",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    saving = [line.strip() for line in r.stdout.splitlines() if "saving " in line]
    assert [line.split()[1] for line in saving] == ["int8-dynamic:", "int8-static:"]
    for line in saving:
        assert "per inference (rounds " in line and "x), accuracy " in line and " pp" in line


def test_zoo_json_plots_and_study(cli: Any, tmp_path: Path) -> None:
    r = cli(
        "zoo", "--models", "mobilenet_v3_small,shufflenet_v2_x0_5", "--min-time-s", "0.05",
        "--out", str(tmp_path / "plots"), "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert [m["model"] for m in d["entries"]] == ["shufflenet_v2_x0_5", "mobilenet_v3_small"]
    for m in d["entries"]:
        assert {
            "model",
            "year",
            "top1",
            "gflops",
            "params",
            "energy_per_item_j",
            "latency_ms",
        } <= set(m)
    assert all(Path(p).is_file() for p in d["plots"]) and len(d["plots"]) == 2
    assert "shufflenet_v2_x0_5" in d["shufflenet"]
    assert _study(d["study_id"]).kind == "zoo"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("infer", "batching", "--model", "nope"), "unknown model 'nope'"),
        (("infer", "batching", "--model", "mlp", "--batch-sizes", "1,x"), "bad batch size"),
        (("infer", "batching", "--model", "mlp", "--max-wait-ms", "soon"), "bad --max-wait-ms"),
        (("infer", "batching", "--model", "mlp", "--rate", "0"), "--rate must be a positive"),
        (("infer", "batching", "--model", "mlp", "--rates", "2,x"), "bad rate 'x'"),
        (("infer", "batching", "--model", "mlp", "--plot", "d"), "give --rates as well"),
        (
            ("infer", "batching", "--model", "mlp", "--rates", "2", "--idle-power-w", "3"),
            "a sweep measures idle",
        ),
        (("infer", "quantize"), "give --model"),
        (("zoo", "--models", "all,resnet18"), "'all' stands alone"),
        (("zoo", "--models", "resnet9000"), "not a torchvision"),
    ],
)
def test_bad_input_fails_with_one_line(cli: Any, args: tuple[str, ...], message: str) -> None:
    r = cli(*args)
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


@pytest.mark.slow
def test_quantize_prints_no_torch_pytree_notice(tmp_path: Path, child_env: dict[str, str]) -> None:
    """torch logs a deprecation notice (``_pytree ... KernelPreference``) when torchao is
    imported; the command silences exactly that one."""
    import subprocess
    import sys

    pytest.importorskip("torchao")
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite"))
    proc = subprocess.run(
        [
            sys.executable, "-m", "wattwise", "infer", "quantize", "--model", "mlp",
            "--epochs", "1", "--rounds", "1", "--min-time-s", "0.05", "--batch-size", "32",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [v["variant"] for v in json.loads(proc.stdout)["variants"]][1:] == [
        "int8-dynamic",
        "int8-static",
    ]  # torchao really was imported and used
    assert "KernelPreference" not in proc.stderr and "_pytree" not in proc.stderr


MISSING = ("replay:/missing.csv", "cannot read trace /missing.csv")
BOGUS = ("bogus", "unknown meters 'bogus' (use auto or replay:PATH)")


@pytest.mark.parametrize(
    ("command", "meters", "message"),
    [
        (("infer", "batching", "--model", "mlp"), *MISSING),
        (("infer", "batching", "--model", "mlp"), *BOGUS),
        (("infer", "quantize", "--model", "mlp"), *BOGUS),
        (("zoo", "--models", "resnet18"), *MISSING),
    ],
)
def test_bad_meters_are_one_line_and_write_nothing(
    command: tuple[str, ...], meters: str, message: str, tmp_path: Path, child_env: dict[str, str]
) -> None:
    store = tmp_path / "store.sqlite"
    proc = wattwise(dict(child_env, WATTWISE_STORE=str(store)), *command, "--meters", meters)
    assert proc.returncode == 2
    assert message in one_error_line(proc)
    assert proc.stdout == "" and not store.exists()
