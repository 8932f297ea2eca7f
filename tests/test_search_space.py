"""Search spaces: YAML in, checked before any trial, with errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("yaml")
pytest.importorskip("torch")

import typer
from typer.testing import CliRunner

from wattwise._errors import ConfigError, DataFileError
from wattwise.cli._sweep import sweep_app
from wattwise.search import (
    BUILTIN_SPACES,
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpace,
    builtin_space,
    load_space,
)

GOOD = """\
# a space for the cnn
model: cnn
epochs: 4
min_epochs: 1
params:
  lr: {type: float, low: 1e-4, high: 1e-1, log: true}
  batch_size: {type: categorical, choices: [32, 64], grid: [64]}
  width: {type: int, low: 8, high: 40, step: 8}
  depth: {type: int, low: 1, high: 2}
  optimizer: [adam, sgd]
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_space_reads_with_its_types_and_grid(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, GOOD), model="cnn")
    assert space.epochs == 4 and space.min_epochs == 1 and space.model == "cnn"
    lr, bs, width, depth, opt = space.params
    # YAML 1.1 reads 1e-4 as text: it is accepted as the number it spells.
    assert lr == FloatParam("lr", 1e-4, 1e-1, log=True)
    assert bs == CategoricalParam("batch_size", (32, 64), grid=(64,))
    assert width == IntParam("width", 8, 40, step=8)
    assert opt == CategoricalParam("optimizer", ("adam", "sgd"))
    grid = space.grid()
    # Default float grid: centres of three equal log-cells of [1e-4, 1e-1].
    assert grid["lr"] == pytest.approx([3.16e-4, 3.16e-3, 3.16e-2], rel=1e-2)
    assert grid["batch_size"] == [64]
    assert grid["width"] == [16, 24, 32]  # 5 values: three cell centres, snapped to the step
    assert grid["depth"] == [1, 2]  # few values: all of them
    assert space.grid_size == 3 * 1 * 3 * 2 * 2
    assert depth.grid_values() == (1, 2)


def test_a_space_round_trips_through_yaml(tmp_path: Path) -> None:
    space = load_space(write(tmp_path, GOOD))
    again = load_space(write(tmp_path, space.to_yaml(), "again.yaml"))
    assert again.params == space.params and again.epochs == space.epochs


@pytest.mark.parametrize("model", sorted(BUILTIN_SPACES))
def test_builtin_spaces_are_valid_full_16_point_grids(model: str) -> None:
    space = builtin_space(model)
    assert space.grid_size == 16
    assert space.epochs == 9 and space.min_epochs == 1
    assert set(space.names) == {"lr", "batch_size", "width", "depth"}


def test_builtin_space_errors() -> None:
    with pytest.raises(ConfigError, match="no built-in search space for model 'resnet18'"):
        builtin_space("resnet18")
    with pytest.raises(DataFileError, match=r"params\.width: also fixed in the model spec"):
        builtin_space("cnn:width=8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: [3\n", r"space.yaml:2: not valid YAML"),
        ("- 1\n- 2\n", r"space.yaml: a search space is a mapping"),
        ("params: {lr: [0.1]}\n", r"space.yaml: epochs: missing"),
        ("epochs: 0\nparams: {lr: [0.1]}\n", r"space.yaml: epochs: must be >= 1"),
        ("epochs: 3\nmin_epochs: 4\nparams: {lr: [0.1]}\n", r"min_epochs: must be between"),
        ("epochs: 3\nparms: {}\n", r"space.yaml: parms: unknown key \(known: model, epochs"),
        ("epochs: 3\nparams: {}\n", r"space.yaml: params: expected a mapping"),
        (
            "epochs: 3\nparams:\n  lr: {type: float, low: 0.1}\n",
            r"space.yaml: params.lr.high: missing",
        ),
        (
            "epochs: 3\nparams:\n  lr: {type: float, low: abc, high: 1}\n",
            r"space.yaml: params.lr.low: expected a number, got str 'abc'",
        ),
        (
            "epochs: 3\nparams:\n  lr: {type: float, low: 0.1, high: 0.01}\n",
            r"params.lr: low \(0.1\) must be below high \(0.01\)",
        ),
        (
            "epochs: 3\nparams:\n  lr: {type: float, low: 0.1, high: 1, hihg: 2}\n",
            r"params.lr.hihg: unknown key \(known: type, low, high, log, grid\)",
        ),
        (
            "epochs: 3\nparams:\n  lr: {type: real, low: 0.1, high: 1}\n",
            r"params.lr.type: expected float, int or categorical, got 'real'",
        ),
        (
            "epochs: 3\nparams:\n  lr: {type: float, low: 0.001, high: 0.1, grid: [0.5]}\n",
            r"params.lr.grid: 0.5 is outside \[0.001, 0.1\]",
        ),
        (
            "epochs: 3\nparams:\n  width: {type: int, low: 8, high: 32, step: 8, grid: [12]}\n",
            r"params.width.grid: 12 is not a value of range\(8, 32, step 8\)",
        ),
        (
            "epochs: 3\nparams:\n  width: {type: int, low: 1.5, high: 4}\n",
            r"params.width.low: expected a whole number",
        ),
        ("epochs: 3\nparams:\n  optimizer: [adam, lion]\n", r"params.optimizer: choices among"),
        ("epochs: 3\nparams:\n  batch_size: [32, 32]\n", r"params.batch_size.choices: a value"),
        ("epochs: 3\nparams:\n  batch_size: [0, 32]\n", r"params.batch_size: values must be >= 1"),
        ("epochs: 3\nparams:\n  lr: {type: categorical, choices: [0.1]}\n", r"params.lr: the"),
    ],
)
def test_malformed_space_files_fail_with_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataFileError, match=message):
        load_space(write(tmp_path, text))


def test_parameters_are_checked_against_the_model(tmp_path: Path) -> None:
    path = write(tmp_path, "epochs: 3\nparams:\n  dropout: {type: float, low: 0, high: 0.5}\n")
    load_space(path)  # without a model, any name parses
    with pytest.raises(DataFileError, match=r"params.dropout: not a parameter of training or of"):
        load_space(path, model="cnn")
    with pytest.raises(DataFileError, match=r"model: the space is for cnn, not for mlp"):
        load_space(write(tmp_path, GOOD), model="mlp")
    deep = write(tmp_path, "epochs: 3\nparams:\n  depth: [0, 1]\n", "deep.yaml")
    load_space(deep, model="mlp")  # an MLP may have no hidden layer
    with pytest.raises(DataFileError, match=r"params.depth: a cnn needs depth >= 1"):
        load_space(deep, model="cnn")


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"cannot read search space .*nope.yaml"):
        load_space(tmp_path / "nope.yaml")


def test_space_from_dict_names_its_source() -> None:
    with pytest.raises(DataFileError, match=r"^mine: epochs: missing"):
        SearchSpace.from_dict({"params": {"lr": [0.1]}}, source="mine")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(sweep_app, name="sweep")
    return app


def test_cli_checks_a_malformed_space_in_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "epochs: 3\nparams:\n  lr: {type: float, low: x, high: 1}\n")
    result = CliRunner().invoke(_app(), ["sweep", "space", "--check", str(bad)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert f"{bad}: params.lr.low: expected a number" in lines[0]


def test_cli_prints_the_builtin_space_as_yaml_that_loads(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["sweep", "space", "--model", "mlp"])
    assert result.exit_code == 0, result.output
    space = load_space(write(tmp_path, result.stdout), model="mlp")
    builtin = builtin_space("mlp")
    assert (space.params, space.epochs, space.min_epochs) == (
        builtin.params,
        builtin.epochs,
        builtin.min_epochs,
    )


def test_the_cnn1d_space_builds_at_every_corner_and_takes_the_kernel() -> None:
    """mnist1d's space: every extreme of its ranges is a model that takes a (1, 40) input
    (build_model tries it on a dummy batch), and a user's space may search the kernel."""
    pytest.importorskip("torch")
    from wattwise.workloads import build_model  # needs torch, which this file does not

    space = builtin_space("cnn1d")
    assert space.model == "cnn1d"
    for depth in (2, 4):
        for width in (16, 64):
            build_model(f"cnn1d:depth={depth},width={width}", input_shape=(1, 40), num_classes=10)
    custom = SearchSpace.from_dict(
        {"epochs": 3, "params": {"kernel": [3, 7]}}, source="kernel space"
    )
    custom.check_model("cnn1d")
    with pytest.raises(DataFileError, match=r"params\.kernel: not a parameter .* model cnn"):
        custom.check_model("cnn")
