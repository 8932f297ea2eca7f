"""cli/_progress.py: the one progress bar of the study and ofa commands, on stderr, shown
from the first callback, none when quiet (--json). Run in a child whose stderr rich is told
is an interactive terminal (TTY_COMPATIBLE / TTY_INTERACTIVE), so the bar really draws."""

from __future__ import annotations

import subprocess
import sys

import pytest

_TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1", "COLUMNS": "100"}

_BAR = """
from wattwise.cli._progress import progress_bar
with progress_bar("measured runs", quiet={quiet}) as told:
    print(told is None)
    if told is not None:
        told(1, 3, "run a")
        told(2, 3, "run [bold]b")  # the last frame, drawn as the bar stops
"""

_STUDY = """
from wattwise.cli._study_options import StudyOptions
for json_out in (False, True):
    with StudyOptions(json_out=json_out).progress() as told:
        print(told is None)
        if told is not None:
            told(1, 2, "lr=0.1")
"""


def _child(code: str, child_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**child_env, **_TERMINAL},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_bar_shows_its_label_the_count_and_the_latest_label(
    child_env: dict[str, str],
) -> None:
    proc = _child(_BAR.format(quiet=False), child_env)
    assert proc.stdout == "False\n"
    assert "measured runs" in proc.stderr
    assert "2/3 run [bold]b" in proc.stderr  # a label is not ours: printed as it is


def test_a_quiet_bar_is_none_and_draws_nothing(child_env: dict[str, str]) -> None:
    proc = _child(_BAR.format(quiet=True), child_env)
    assert proc.stdout == "True\n"
    assert proc.stderr == ""


def test_a_study_shows_measured_runs_and_none_with_json(child_env: dict[str, str]) -> None:
    pytest.importorskip("torch")
    proc = _child(_STUDY, child_env)
    assert proc.stdout == "False\nTrue\n"
    assert "measured runs" in proc.stderr and "1/2" in proc.stderr and "lr=0.1" in proc.stderr
