"""``wattwise ofa train | select`` through the commands: JSON, the stored selection and its
report, exported sub-networks, and one-line errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import typer  # noqa: E402
from tests._cli import one_error_line, wattwise  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from wattwise._records import load_record  # noqa: E402
from wattwise.cli import _ofa as ofa_cli  # noqa: E402
from wattwise.ofa import Selection, elastic_network, load_elastic, save_elastic  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.workloads import load_dataset  # noqa: E402

#: A constant 20 W on the CPU for ten hours, as ``wattwise runs export --format csv`` writes.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)
DATASET = "mnist1d:train=200,val=120"
#: Short windows: the commands are under test here, not the figures (hence budgets, 50 J
#: and 10 s per item, that a loaded machine meets too: 20 W over one item takes far less).
FAST = ("--repeats", "2", "--min-time-s", "0", "--threads", "1")


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(TRACE)
    return path


@pytest.fixture
def network(tmp_path: Path) -> Path:
    """A small elastic network of four sub-networks, saved (untrained: the commands are
    under test, and the selection needs no trained weights to be checked)."""
    data = load_dataset(DATASET)
    torch.manual_seed(0)
    net = elastic_network(
        data.input_shape,
        data.num_classes,
        stages=2,
        max_depth=2,
        widths=(8, 12),
        kernel_choices=(3,),
        expand_choices=(1.0,),
    )
    return save_elastic(net, tmp_path / "elastic.pt")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(ofa_cli.ofa_app, name="ofa")
    return app


@pytest.fixture
def cli(trace: Path) -> Any:
    """The commands in process, with ``--meters replay:`` a constant 20 W trace and the
    test's default store."""
    runner = CliRunner()
    return lambda *args: runner.invoke(_app(), [*args, "--meters", f"replay:{trace}"])


def _select_args(network: Path, *budgets: str) -> list[str]:
    args = ["ofa", "select", str(network), "--dataset", DATASET, *FAST]
    for b in budgets:
        args += ["--budget", b]
    return args


def _default_store() -> RunStore:
    return RunStore.open(None)  # the test's temporary default store


def test_select_json_is_the_selection_and_it_is_stored(cli: Any, network: Path) -> None:
    r = cli(*_select_args(network, "50J", "10s"), "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["kind"], d["schema_version"]) == ("ofa-selection", 1)
    assert d["measured"] == 4 and d["cached"] == 0 and d["search"] == "exhaustive"
    assert [c["budget"]["text"] for c in d["choices"]] == ["50J", "10s"]
    for choice in d["choices"]:
        assert choice["meets_budget"] and choice["chosen"]["source"].startswith("estimated")
        assert "energy_per_item_j_spread" in choice["chosen"]
        # the choice measured once more (the same sub-network for both budgets: once)
        assert choice["confirmation"]["key"] == choice["chosen"]["key"]
    assert d["confirmations"] == 1
    assert d["all_met"] and d["pareto_front"]
    with _default_store() as store:
        study = store.get_study(d["study_id"])
    assert study.kind == "ofa-selection" and [r.run_id for r in study.runs] == [d["run_id"]]
    assert isinstance(load_record(study.results or {}), Selection)
    again = cli(*_select_args(network, "50J"), "--json")  # read back, not measured again
    assert again.exit_code == 0, again.output
    d2 = json.loads(again.stdout)
    assert d2["measured"] == 0 and d2["cached"] == 4 and d2["confirmations"] == 1
    assert d2["run_id"] is not None  # only the confirmation was measured
    off = cli(*_select_args(network, "50J"), "--confirm", "0", "--json")
    d3 = json.loads(off.stdout)
    assert d3["measured"] == 0 and d3["confirmations"] == 0 and d3["run_id"] is None
    assert d3["choices"][0]["confirmation"] is None


def test_select_prints_a_table_of_choices(cli: Any, network: Path) -> None:
    r = cli(*_select_args(network, "50J"))
    assert r.exit_code == 0, r.output
    assert "sub-network" in r.stdout and "measured  4 candidate(s) now" in r.stdout
    assert "estimated (replay of cpu-model)" in r.stdout and "study" in r.stdout


def test_a_budget_nothing_fits_is_one_line_after_the_result(cli: Any, network: Path) -> None:
    r = cli(*_select_args(network, "50J", "1nJ"), "--json")
    assert r.exit_code == 2
    d = json.loads(r.stdout)  # the result is still printed, and stored
    assert [c["meets_budget"] for c in d["choices"]] == [True, False]
    assert d["choices"][1]["chosen"] is None
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no sub-network fits 1nJ" in errors[0]
    assert "needs" in errors[0]  # what the least demanding candidate needs
    assert "Traceback" not in r.output


def test_a_budget_nothing_fits_exports_nothing(cli: Any, network: Path, tmp_path: Path) -> None:
    exports = tmp_path / "subnets"
    r = cli(*_select_args(network, "50J", "1nJ"), "--export-dir", str(exports))
    assert r.exit_code == 2
    assert "nothing was exported" in r.stderr and not exports.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budget", "fast", "--dataset", DATASET), "bad budget 'fast'"),
        (("--budget", "50J", "--dataset", DATASET, "--search", "grid"), "unknown search 'grid'"),
        (("--budget", "50J", "--dataset", "digits"), "give the --dataset it was trained on"),
        (("--budget", "50J", "--dataset", DATASET, "--batch-size", "0"), "batch size must be >= 1"),
        (("--budget", "50J", "--dataset", DATASET, "--export-dir", __file__), "is a file"),
    ],
)
def test_bad_select_input_is_one_line_and_writes_nothing(
    cli: Any, network: Path, args: tuple[str, ...], message: str
) -> None:
    r = cli("ofa", "select", str(network), *args, *FAST)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    with _default_store() as store:
        assert store.list_runs() == [] and store.list_studies() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_device_that_is_not_here_is_one_line(cli: Any, network: Path) -> None:
    r = cli(*_select_args(network, "50J"), "--device", "cuda")
    assert r.exit_code == 2
    assert "PyTorch sees no CUDA GPU here" in r.output and "Traceback" not in r.output
    with _default_store() as store:
        assert store.list_runs() == [] and store.list_studies() == []


def test_a_missing_network_file_is_one_line(cli: Any, tmp_path: Path) -> None:
    r = cli("ofa", "select", str(tmp_path / "nope.pt"), "--budget", "50J")
    assert r.exit_code == 2
    assert "no elastic network file at" in r.output and "Traceback" not in r.output


def test_text_that_is_not_ours_is_printed_as_it_is(cli: Any, network: Path) -> None:
    odd = network.with_name("[bold]net[red].pt")
    odd.write_bytes(network.read_bytes())
    r = cli(*_select_args(odd, "50J"))
    assert r.exit_code == 0, r.output
    assert "[bold]net[red].pt" in r.stderr


@pytest.mark.slow
def test_select_end_to_end_exports_and_reports_the_front(
    tmp_path: Path, child_env: dict[str, str], network: Path, trace: Path
) -> None:
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "cli.sqlite"))
    exports = tmp_path / "subnets"
    proc = wattwise(
        env, *_select_args(network, "50J", "10s"), "--export-dir", str(exports),
        "--meters", f"replay:{trace}", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    paths = [Path(c["export_path"]) for c in d["choices"]]
    assert all(p.parent == exports and p.suffix == ".pt2" for p in paths)
    program = torch.export.load(paths[0]).module()  # plain PyTorch: no wattwise class
    net = load_elastic(network)
    x = torch.stack([load_dataset(DATASET).val[i][0] for i in range(3)])
    chosen = d["choices"][0]["chosen"]
    from wattwise.ofa import SubnetConfig

    config = SubnetConfig.from_dict(chosen["config"])
    assert torch.allclose(program(x), net.export(config).eval()(x), atol=1e-5)
    out = tmp_path / "report.html"
    report = wattwise(env, "report", "--study", d["study_id"], "--out", str(out))
    assert report.returncode == 0, report.stderr
    html = out.read_text()
    assert html.count("<svg") == 1 and "Energy per inference against validation accuracy" in html
    assert "≤ 50J" in html  # the chosen sub-network is labelled by its budget


@pytest.mark.slow
def test_bad_input_in_a_real_process_is_one_line_and_writes_nothing(
    tmp_path: Path, child_env: dict[str, str], network: Path
) -> None:
    store = tmp_path / "cli.sqlite"
    env = dict(child_env, WATTWISE_STORE=str(store))
    for args, message in (
        (_select_args(network, "50 bananas"), "bad budget '50 bananas'"),
        (_select_args(tmp_path / "missing.pt", "50J"), "no elastic network file at"),
    ):
        proc = wattwise(env, *args)
        assert proc.returncode == 2
        assert message in one_error_line(proc)
        assert proc.stdout == "" and not store.exists()


TINY_TRAIN = (
    "--dataset", DATASET, "--stages", "1", "--max-depth", "2", "--widths", "8",
    "--kernels", "3", "--expands", "1", "--largest-epochs", "1", "--kernel-epochs", "0",
    "--depth-epochs", "1", "--width-epochs", "",
)  # fmt: skip


@pytest.mark.slow
def test_train_then_select_end_to_end_with_json_on_both(
    tmp_path: Path, child_env: dict[str, str], trace: Path
) -> None:
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "cli.sqlite"))
    out = tmp_path / "elastic.pt"
    meters = ("--meters", f"replay:{trace}")
    proc = wattwise(env, "ofa", "train", "--out", str(out), *TINY_TRAIN, *meters, "--json")
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)
    assert trained["kind"] == "ofa-shrink" and trained["out"] == str(out)
    assert [p["name"] for p in trained["phases"]] == ["largest", "depth-1"]
    assert trained["sub_networks"] == 2 and trained["energy_source"].startswith("estimated")
    with RunStore.open(env["WATTWISE_STORE"]) as store:
        run = store.get_run(trained["run_id"])
    assert {"largest", "depth-1"} <= {w.name for w in run.windows}  # each phase stored
    assert load_elastic(out).space.size() == 2
    proc = wattwise(env, *_select_args(out, "50J"), *meters, "--json")
    assert proc.returncode == 0, proc.stderr
    chosen = json.loads(proc.stdout)["choices"][0]
    assert chosen["meets_budget"] and chosen["chosen"]["energy_per_item_j"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--out", "missing-folder/x.pt"), "does not exist"),
        (("--out", "x.pt", "--depth-epochs", "two"), "--depth-epochs must be whole numbers"),
        (("--out", "x.pt", "--largest-epochs", "0"), "largest_epochs must be >= 1"),
        (("--out", "x.pt", "--kernels", "4"), "odd"),
    ],
)
def test_bad_train_input_is_one_line_and_writes_nothing(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("ofa", "train", "--dataset", DATASET, "--largest-epochs", "1", *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.pt").exists()
    with _default_store() as store:
        assert store.list_runs() == []
