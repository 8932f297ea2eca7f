"""The options every ``wattwise study`` command shares (cli/_study_options.py): each command
ends with them in one order, and a command gets them bundled as given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import typer
from typer.testing import CliRunner

import wattwise.cli  # noqa: F401 - registers every study command on the group
from wattwise._errors import ConfigError
from wattwise.cli._study import study_app
from wattwise.cli._study_options import StudyOptions, study_options
from wattwise.tracking import Scope

SHARED = [
    "--warmup-batches",
    "--cooldown",
    "--test",
    "--alpha",
    "--scope",
    "--seed",
    "--name",
    "--store",
    "--meters",
    "--json",
]


def _options(command: Any) -> list[str]:
    return [p.opts[0] for p in command.params if p.opts[0] != "--help"]


@pytest.mark.parametrize("name", ["architectures", "layers", "environments", "keypoints", "snn"])
def test_every_study_command_ends_with_the_shared_options(name: str) -> None:
    group = typer.main.get_command(study_app)
    command = group.commands[name]  # type: ignore[attr-defined]
    opts = _options(command)
    # snn compares no configurations by a significance test: no --test, no --alpha.
    shared = [o for o in SHARED if name != "snn" or o not in ("--test", "--alpha")]
    assert opts[-len(shared) :] == shared
    assert len(set(opts)) == len(opts)
    assert [p.default for p in command.params if p.opts[0] in ("--cooldown", "--scope")] == [
        0.0,
        "machine",
    ]


def _app(seen: list[StudyOptions], *, significance: bool = True) -> typer.Typer:
    app = typer.Typer()

    @app.command("probe")
    @study_options(significance=significance)
    def probe(
        options: StudyOptions,
        repeats: int = 3,
        refuse: bool = False,
    ) -> None:
        seen.append(options)
        if refuse:
            raise ConfigError("refused [on purpose]")
        options.method(repeats)

    @app.command("other")
    def other() -> None:  # a second command, so "probe" stays a subcommand
        pass

    return app


def test_a_command_gets_the_shared_options_bundled_as_given(tmp_path: Path) -> None:
    seen: list[StudyOptions] = []
    store = str(tmp_path / "runs.sqlite")
    args = ["probe", "--repeats", "2", "--cooldown", "0.5", "--test", "WELCH", "--alpha", "0.1"]
    args += ["--scope", "Process", "--seed", "7", "--name", "n", "--store", store, "--json"]
    result = CliRunner().invoke(_app(seen), args)
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert options == StudyOptions(
        warmup_batches=10,
        cooldown_s=0.5,
        test="WELCH",
        alpha=0.1,
        scope="Process",
        seed=7,
        name="n",
        store=store,
        meters="auto",
        json_out=True,
    )
    method = options.method(2)
    assert (method.repeats, method.protocol.cooldown_s, method.test, method.alpha) == (
        2,
        0.5,
        "welch",
        0.1,
    )
    assert method.protocol.seed == 7
    assert options.context().scope is Scope.PROCESS
    assert not Path(store).exists()  # building the context opens nothing


def test_without_significance_the_test_is_mann_whitney_at_5_percent() -> None:
    seen: list[StudyOptions] = []
    app = _app(seen, significance=False)
    refused = CliRunner().invoke(app, ["probe", "--test", "welch"])
    assert refused.exit_code == 2 and "No such option" in refused.output
    assert CliRunner().invoke(app, ["probe"]).exit_code == 0
    assert (seen[0].test, seen[0].alpha) == ("mannwhitney", 0.05)


def test_an_error_in_the_command_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(_app([]), ["probe", "--refuse"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: refused [on purpose]"]
