"""Edges of the CLI found by trying bad input by hand: each is one line, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests._cli import wattwise


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["carbon", "intensity", "--zone", ""],
            "error: --zone is empty: give a zone code such as DE, or leave it out "
            "(`wattwise carbon zones` lists them)",
        ),
        (
            ["carbon", "intensity", "--zone", "  "],
            "error: --zone is empty: give a zone code such as DE, or leave it out "
            "(`wattwise carbon zones` lists them)",
        ),
        (
            ["train", "--model", "mlp", "--epochs", "100000000000"],
            "error: --epochs must be between 1 and 100000, got 100000000000",
        ),
        (
            ["infer", "batching", "--model", "mlp", "--rate", "-5"],
            "error: --rate must be a positive number of requests/s, got -5",
        ),
        (
            ["infer", "batching", "--model", "mlp", "--rate", "nan"],
            "error: --rate must be a positive number of requests/s, got nan",
        ),
    ],
)
def test_bad_values_are_one_line_before_any_work(
    args: list[str], line: str, child_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "store.sqlite"
    env = dict(child_env, WATTWISE_STORE=str(store), COLUMNS="200")
    proc = wattwise(env, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [line]
    assert proc.stdout == ""
    assert not store.exists()  # nothing was measured or stored


def test_an_empty_zone_in_the_api_is_refused_not_the_world_mean() -> None:
    from wattwise import ConfigError
    from wattwise.carbon import resolve_location

    with pytest.raises(ConfigError, match="--zone is empty"):
        resolve_location(zone="", environ={"WATTWISE_ZONE": "FR"})
    # An empty environment variable is the same as none set (the usual convention).
    assert resolve_location(zone=None, environ={"WATTWISE_ZONE": ""}).zone != ""
