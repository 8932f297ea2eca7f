"""What the CLI prints: text that is not ours verbatim, --version/-h/--quiet, help at 80
columns, `runs list` at any width and the once-per-machine CPU note. Real child processes."""

from __future__ import annotations

import itertools
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from wattwise.cli import app
from wattwise.cli._common import NoteHandler, fail
from wattwise.tracking._tracker import NOTE_ONCE_ATTR

UNRULY = "[/x] a[bold]b [/] c"  # a closing tag with no opening, an opening one, a bare [/]


class Cli:
    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = dict(env)
        self.env["WATTWISE_STORE"] = str(tmp_path / "text-store.sqlite")
        self.env["WATTWISE_STATE_DIR"] = str(tmp_path / "text-state")
        self.env.pop("CUDA_VISIBLE_DEVICES", None)

    def __call__(self, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, COLUMNS=str(columns))
        return subprocess.run(
            [sys.executable, "-m", "wattwise", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def cli(child_env: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(child_env, tmp_path)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _run_id(proc: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"\(([0-9a-f]{12})\)", proc.stdout + proc.stderr)
    assert found, proc.stderr
    return found.group(1)


# -- A: text that is not ours ---------------------------------------------------------------


@pytest.mark.slow
def test_a_run_name_with_markup_is_printed_verbatim(cli: Cli) -> None:
    proc = cli("run", "--name", UNRULY, "--", "true")
    assert proc.returncode == 0, proc.stderr
    assert f"run {UNRULY} (" in proc.stderr  # run's summary: stdout is the command's
    run_id = _run_id(proc)
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert f"run {UNRULY} ({run_id})" in shown.stdout
    listed = cli("runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert UNRULY in listed.stdout
    compared = cli("runs", "compare", run_id, run_id)
    assert compared.returncode == 0, compared.stderr
    assert UNRULY in compared.stdout


@pytest.mark.parametrize("run_id", ["[/x]abcd", "ab[bold]cd", "[/]"])
def test_an_unknown_id_with_markup_is_named_exactly(cli: Cli, run_id: str) -> None:
    recorded = cli("run", "--name", "one", "--", "true")  # a store to look the id up in
    assert recorded.returncode == 0, recorded.stderr
    line = one_line_error(cli("runs", "show", run_id))
    assert repr(run_id) in line


def test_a_zone_with_markup_is_one_line_error(cli: Cli) -> None:
    line = one_line_error(cli("carbon", "intensity", "--zone", "[/red]"))
    assert "'[/red]'" in line


def test_a_trace_path_with_markup_is_named_exactly(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "["  # so that the path reads .../[/]x.csv
    folder.mkdir()
    missing = str(folder / "]x.csv")
    assert "[/]x.csv" in missing
    line = one_line_error(
        cli("schedule", "--trace", missing, "--duration", "1h", "--deadline", "2020-06-01T08:00")
    )
    assert missing in line


def test_a_zone_name_with_markup_is_printed_verbatim_by_schedule(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "[b]").mkdir()
    trace = tmp_path / "[b]" / "trace[x].csv"
    rows = [f"2020-06-01 {h:02d}:00:00,{300 - 10 * h}" for h in range(12)]
    trace.write_text("Time,Carbon Intensity\n" + "\n".join(rows) + "\n", encoding="utf-8")
    proc = cli(
        "schedule",
        "--trace",
        f"[b]DE[/]={trace}",
        "--start",
        "2020-06-01T00:00",
        "--duration",
        "1h",
        "--deadline",
        "2020-06-01T10:00",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Best: [b]DE[/], start" in proc.stdout


def test_messages_with_brackets_keep_them(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        fail("wattwise sweep needs Optuna: pip install 'wattwise[search]' [/x]")
    assert exited.value.code == 2
    assert "error: wattwise sweep needs Optuna: pip install 'wattwise[search]' [/x]" in (
        capsys.readouterr().err
    )
    logger = logging.getLogger("wattwise.test-notes")
    handler = NoteHandler()
    logger.addHandler(handler)
    try:
        logger.warning("no GPU meter: pip install 'wattwise[nvidia]' [bold]")
    finally:
        logger.removeHandler(handler)
    assert "note: no GPU meter: pip install 'wattwise[nvidia]' [bold]" in capsys.readouterr().err


# -- B: --version, -h, --quiet, help -------------------------------------------------------


@pytest.mark.slow
def test_version_and_short_help(cli: Cli) -> None:
    from importlib.metadata import version

    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"wattwise {version('wattwise')}\n"
    for args in ([], ["runs"], ["runs", "list"], ["carbon", "intensity"]):
        short, long = cli(*args, "-h"), cli(*args, "--help")
        assert short.returncode == 0, short.stderr
        assert short.stdout == long.stdout
        assert "Usage: wattwise" in short.stdout


@pytest.mark.slow
def test_quiet_keeps_data_and_errors_only(cli: Cli) -> None:
    loud = cli("run", "--baseline", "0.2s", "--", "true")
    assert loud.returncode == 0
    assert "measuring the idle baseline" in loud.stderr
    quiet = cli("-q", "run", "--baseline", "0.2s", "--", "true")
    assert quiet.returncode == 0
    # run's summary is its result (on stderr, as stdout is the command's): it stays.
    assert "measuring the idle baseline" not in quiet.stderr
    assert "note:" not in quiet.stderr
    assert "completed" in quiet.stderr and "energy" in quiet.stderr
    listed = cli("-q", "runs", "list", "--json")
    assert listed.returncode == 0 and listed.stderr == ""
    assert len(__import__("json").loads(listed.stdout)) == 2
    line = one_line_error(cli("--quiet", "runs", "show", "nope"))
    assert "'nope'" in line


def _all_commands() -> list[list[str]]:
    paths: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.slow
def test_help_at_80_columns_shows_flags_as_flags_and_whole_sentences(cli: Cli) -> None:
    for path in _all_commands():
        proc = cli(*path, "-h", columns=80)
        assert proc.returncode == 0, (path, proc.stderr)
        assert "<bool>" not in proc.stdout, path
        assert "…" not in proc.stdout, (path, proc.stdout)  # nothing cut off
        assert all(len(line) <= 80 for line in proc.stdout.splitlines()), path
        _assert_filled(path, proc.stdout)


def _assert_filled(path: list[str], help_text: str) -> None:
    """In a command list, a wrapped summary line is as full as it can be: a line followed
    by more of the same summary could not have taken its next word (no hard line breaks)."""
    panel = help_text.partition("╭─ Commands")[2].partition("╰")[0]
    rows = [ln[1:-1] for ln in panel.splitlines() if ln.startswith("│") and ln.endswith("│")]
    for line, nxt in itertools.pairwise(rows):
        text, more = line.rstrip(), nxt.rstrip()
        indent = len(more) - len(more.lstrip())
        if not more.strip() or len(more.strip().split()) == 0:
            continue
        if indent == 0 or indent != len(text) - len(text.lstrip(" ")) + _lead(text):
            continue  # the next line starts a new entry
        word = more.split()[0]
        assert len(text) + 1 + len(word) > len(line) - 1, (path, line, nxt)


def _lead(text: str) -> int:
    """Offset of the description column in a panel row: the text after its first gap."""
    found = re.search(r"\S  +(?=\S)", text)
    return 0 if found is None else found.end() - (len(text) - len(text.lstrip(" ")))


# -- B: runs list at any width ----------------------------------------------------------------

LONG = "nightly fine-tuning of resnet50 on the full imagenet subset with mixed precision"


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 60])
def test_runs_list_keeps_the_key_columns(cli: Cli, columns: int) -> None:
    ids = []
    for name in (LONG, "short", LONG + " again"):
        proc = cli("run", "--name", name, "--", "true")
        assert proc.returncode == 0, proc.stderr
        ids.append(_run_id(proc))
    proc = cli("runs", "list", columns=columns)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), proc.stdout
    header = next(line for line in lines if "id" in line and "status" in line)
    for key in ("id", "name", "status", "energy"):
        assert key in header, header
    text = re.sub(r"[│┃\s]+", " ", proc.stdout)
    for run_id in ids:
        assert run_id in proc.stdout
    assert "short" in text and "nightly" in text and "mixed" in text  # the long name wraps
    assert proc.stdout.count("completed") == 3
    assert len(re.findall(r"\d+(\.\d+)? (µJ|mJ|J|kJ)", proc.stdout)) == 3
    assert "estimated" in proc.stdout or "est." in proc.stdout or "meas" in proc.stdout


# -- B: the CPU note once per machine --------------------------------------------------------


def test_a_note_about_the_machine_is_shown_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("wattwise.test-once")
    handler = NoteHandler()
    logger.addHandler(handler)
    try:
        for _ in range(2):
            logger.warning("CPU 'X' is not in the power table", extra={NOTE_ONCE_ATTR: True})
            logger.warning("a note about this run")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count("not in the power table") == 1
    assert err.count("a note about this run") == 2
    assert (Path(os.environ["WATTWISE_STATE_DIR"]) / "notes-shown.json").is_file()


@pytest.mark.slow
def test_the_cpu_note_is_shown_once_across_commands_and_always_by_meters(cli: Cli) -> None:
    # An Arm cpuinfo no table row or generation rule knows: the note appears on any machine.
    cpuinfo = Path(__file__).resolve().parent / "data" / "cpuinfo" / "graviton3-arm64.txt"
    cli.env["WATTWISE_CPUINFO"] = str(cpuinfo)
    hint = next(
        m["reason"]
        for m in __import__("json").loads(cli("meters", "--json").stdout)["meters"]
        if m["meter"] == "estimate"
    )
    if "not in the power table" not in hint:
        pytest.skip(f"this machine's CPU is in the power table ({hint})")
    first = cli("run", "--", "true")
    assert first.returncode == 0
    assert first.stderr.count("not in the power table") == 1
    second = cli("run", "--", "true")
    assert second.returncode == 0
    assert "not in the power table" not in second.stderr
    for _ in range(2):
        meters = cli("meters")
        assert "not in the power table" in meters.stdout
    # Another configuration (a TDP given) has nothing to say; the note stays remembered.
    given = cli("run", "--cpu-tdp-w", "65", "--", "true")
    assert "not in the power table" not in given.stderr
