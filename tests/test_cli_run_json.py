"""`wattwise run --json` and `--json-out` keep the JSON parseable (issue 11, section 6).

With ``--json`` the JSON is the only thing on stdout (the command's stdout goes to stderr);
with ``--json-out FILE`` the JSON goes to the file and the command's stdout is untouched.
End to end, in real child processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests._cli import wattwise


@pytest.fixture
def env(child_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return dict(child_env, WATTWISE_STORE=str(tmp_path / "runs.sqlite"))


def test_json_is_the_only_thing_on_stdout(env: dict[str, str], tmp_path: Path) -> None:
    proc = wattwise(env, "run", "--json", "--", "sh", "-c", "echo hi; echo oops >&2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)  # the issue: "hi" came first and this failed
    assert run["status"] == "completed" and run["command"] == ["sh", "-c", "echo hi; echo oops >&2"]
    assert proc.stderr.splitlines().count("hi") == 1  # the command's stdout, kept on stderr
    assert "oops" in proc.stderr


def test_json_keeps_the_exit_code(env: dict[str, str], tmp_path: Path) -> None:
    proc = wattwise(env, "run", "--json", "--", "sh", "-c", "echo out; exit 3", cwd=tmp_path)
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["exit_code"] == 3


def test_json_out_writes_the_file_and_leaves_stdout_to_the_command(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    proc = wattwise(env, "run", "--json-out", str(out), "--", "sh", "-c", "echo hi", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\n"
    run = json.loads(out.read_text())
    assert run["status"] == "completed" and run["energy_j"] > 0
    assert "energy" in proc.stderr  # the human summary, on stderr as without --json-out


def test_json_and_json_out_together_agree(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = wattwise(
        env, "run", "--json", "--json-out", str(out), "--", "sh", "-c", "echo hi", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(out.read_text())


def test_json_out_in_a_missing_directory_is_refused_before_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    out = tmp_path / "missing" / "run.json"
    proc = wattwise(
        env, "run", "--json-out", str(out), "--", "sh", "-c", f"touch {marker}", cwd=tmp_path
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "its directory does not exist" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not marker.exists() and not out.parent.exists()


def test_help_says_where_the_commands_stdout_goes(env: dict[str, str], tmp_path: Path) -> None:
    proc = wattwise(dict(env, COLUMNS="200"), "run", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "CMD's stdout goes to stderr" in proc.stdout
    assert "--json-out" in proc.stdout
