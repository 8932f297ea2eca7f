"""Usage errors (an unknown flag, a missing option, a value of the wrong type) are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests._cli import wattwise


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["train", "--lr", "abc"],
            "error: Invalid value for '--lr': Input should be a valid number, unable to parse "
            "string as a number (see `wattwise train --help`)",
        ),
        (
            ["runs", "export", "x"],
            "error: Missing option '--format'. Choose from: csv, json "
            "(see `wattwise runs export --help`)",
        ),
        (["nosuchcmd"], "error: No such command 'nosuchcmd' (see `wattwise --help`)"),
        (
            ["run", "--nosuch", "--", "true"],
            "error: No such option: --nosuch (see `wattwise run --help`)",
        ),
        (
            ["runs", "list", "--limit", "-5"],
            "error: Invalid value for '--limit': Input should be greater than or equal to 1 "
            "(see `wattwise runs list --help`)",
        ),
    ],
)
def test_a_usage_error_is_one_line_naming_the_help(
    args: list[str], line: str, child_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite"), COLUMNS="80")
    proc = wattwise(env, *args)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [line]
    assert proc.stdout == ""
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.slow
def test_no_command_prints_the_help_and_help_exits_zero(child_env: dict[str, str]) -> None:
    bare = wattwise(child_env)
    assert bare.returncode == 2
    assert "Usage: wattwise [OPTIONS] COMMAND" in bare.stdout
    helped = wattwise(child_env, "meters", "-h")
    assert helped.returncode == 0
    assert "Usage: wattwise meters" in helped.stdout
