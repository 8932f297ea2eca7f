"""``wattwise run -- CMD ...``: measure the energy of any command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Annotated

import typer

from wattwise._errors import WattwiseError
from wattwise._records import RunResult, RunStatus, Scope
from wattwise.carbon import parse_duration
from wattwise.cli._carbon_opts import CloudOpt, LiveOpt, ZoneOpt, resolve_run_location
from wattwise.cli._common import err_console, fail, print_json, summary_console
from wattwise.cli._meters import check_cpu_settings
from wattwise.cli._prometheus_opts import (
    PrometheusOpt,
    child_env,
    prometheus_option,
)
from wattwise.cli._render import render_run
from wattwise.store import RunStore
from wattwise.tracking._members import RUN_ENV_VAR
from wattwise.tracking._tracker import Tracker

__all__ = ["run"]

#: Signals passed on to the command. SIGINT from a terminal already reaches the command
#: (it is in the terminal's foreground process group), so it is forwarded only when
#: wattwise's standard input is not a terminal (a `kill -INT` from a script or CI).
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


#: Longest idle baseline ``--baseline`` accepts, in s.
MAX_BASELINE_S = 3600.0
#: Range of ``--interval``, the sampling period, in s.
MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 3600.0


def _check_executable(program: str) -> None:
    """Fail with the shell's status (126 not executable, 127 not found) and a clear line."""
    if shutil.which(program) is not None:
        return
    path = Path(program)
    if os.sep in program or (os.altsep is not None and os.altsep in program):
        if path.is_dir():
            fail(f"{program} is a directory, not a command", code=126)
        if path.exists():
            fail(
                f"{program} is not executable: make it so (chmod +x {program}) or run it with "
                f"its interpreter (wattwise run -- sh {program})",
                code=126,
            )
        fail(f"command not found: {program} (no such file)", code=127)
    fail(f"command not found: {program} (check the name and your PATH)", code=127)


def _child_env(tracker: Tracker, store: str | None) -> dict[str, str]:
    """The command's environment: a ``wattwise.track()`` in it (every rank of a
    ``torchrun`` it starts) joins this run, in this store, instead of making its own."""
    env = child_env(tracker.prometheus) or dict(os.environ)
    env[RUN_ENV_VAR] = tracker.member_of or tracker.run_id
    if store is not None:
        env["WATTWISE_STORE"] = store
    return env


def _start(
    command: list[str], tracker: Tracker, store: str | None, *, json_out: bool
) -> subprocess.Popen[bytes]:
    """Start CMD; with ``--json`` its stdout goes to our stderr (stdout carries the JSON)."""
    stdout = sys.stderr.fileno() if json_out else None
    return subprocess.Popen(command, stdout=stdout, env=_child_env(tracker, store))


def _as_stored(result: RunResult, store: str | None) -> RunResult:
    """The run as the store has it: with the members that joined it, if any did."""
    try:
        with RunStore.open(store, read_only=True) as opened:
            stored = opened.get_run(result.run_id)
    except WattwiseError:
        return result  # not stored (the warning said why): what this process measured
    return stored if stored.members else result


def run(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The command to run, after `--`.", show_default=False),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name of the run (default: the command).")
    ] = None,
    scope: Annotated[
        Scope, typer.Option(help="machine: all the meters see; process: the command's share.")
    ] = Scope.MACHINE,
    baseline: Annotated[
        str | None,
        typer.Option(help="Measure idle power for this long first (e.g. 5s) to report net energy."),
    ] = None,
    interval: Annotated[float, typer.Option(help="Sampling period in s.")] = 1.0,
    cpu_tdp_w: Annotated[
        float | None,
        typer.Option("--cpu-tdp-w", help="Your CPU's TDP in W (overrides the table)."),
    ] = None,
    zone: ZoneOpt = None,
    cloud: CloudOpt = None,
    live: LiveOpt = False,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the run as JSON, the only thing on stdout: CMD's stdout goes to stderr.",
        ),
    ] = False,
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json-out",
            help="Also write the run as JSON to this file; CMD's stdout stays on stdout.",
            dir_okay=False,
        ),
    ] = None,
    prometheus: PrometheusOpt = None,
) -> None:
    """Run CMD, measure its energy, store the run and print a summary.

    Exits with CMD's exit code (128+N when a signal N killed it).
    """
    if not command:
        fail("no command given: use `wattwise run [OPTIONS] -- CMD [ARGS...]`")
    baseline_s = _checked_options(command, json_file, cpu_tdp_w, baseline, interval)
    location = resolve_run_location(zone, cloud, live=live)

    tracker = Tracker(
        name or " ".join(command)[:80],
        scope=scope,
        interval_s=interval,
        baseline_s=baseline_s,
        store=store,
        cpu_tdp_w=cpu_tdp_w,
        command=command,
        intensity=location,
        prometheus=prometheus_option(prometheus),
    )
    if baseline_s > 0 and not json_out:
        err_console.print(f"measuring the idle baseline for {baseline_s:g} s...", highlight=False)
    tracker.start()
    try:
        proc = _start(command, tracker, store, json_out=json_out)
    except OSError as exc:
        tracker.stop(status=RunStatus.FAILED, exit_code=127)
        fail(f"cannot start {command[0]}: {exc.strerror}", code=127)
    tracker.follow(proc.pid)
    returncode = _wait(proc)

    if returncode < 0:
        exit_code, status = 128 - returncode, RunStatus.INTERRUPTED
    else:
        exit_code = returncode
        status = RunStatus.COMPLETED if returncode == 0 else RunStatus.FAILED
    result = _as_stored(tracker.stop(status=status, exit_code=exit_code), store)
    _report(result, json_out=json_out, json_file=json_file)
    raise typer.Exit(exit_code)


def _checked_options(
    command: list[str],
    json_file: Path | None,
    cpu_tdp_w: float | None,
    baseline: str | None,
    interval: float,
) -> float:
    """Check the options before anything starts (one clear line and exit on bad input);
    the idle baseline to measure, in s."""
    if json_file is not None and not json_file.absolute().parent.is_dir():
        fail(f"cannot write --json-out {json_file}: its directory does not exist")
    _check_executable(command[0])
    check_cpu_settings(cpu_tdp_w)
    baseline_s = (
        parse_duration(baseline, max_s=MAX_BASELINE_S, what="--baseline") if baseline else 0.0
    )
    if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:  # also refuses NaN
        fail(
            f"--interval {interval:g} is out of range: the sampling period must be between "
            f"{MIN_INTERVAL_S:g} s and {MAX_INTERVAL_S:g} s"
        )
    return baseline_s


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the command, passing the signals of :data:`_FORWARDED` on to it (SIGINT
    too when stdin is not a terminal; from a terminal it reached the command already, so
    wattwise ignores it and waits); the previous handlers restored after. Its return code."""
    forwarded = list(_FORWARDED)
    if not sys.stdin.isatty():
        forwarded.append(signal.SIGINT)

    def forward(signum: int, _frame: types.FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in forwarded}
    if signal.SIGINT not in previous:
        # Ctrl-C reached the command too: let it decide, and wait for it.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _report(result: RunResult, *, json_out: bool, json_file: Path | None) -> None:
    """Print the run (JSON on stdout, or the summary) and write ``--json-out``."""
    if json_out:
        print_json(result.to_dict())
    else:
        render_run(result, summary_console)
    if json_file is not None:
        try:
            json_file.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(
                f"cannot write --json-out {json_file}: {exc.strerror} "
                f"(the run is stored as {result.run_id})"
            )
