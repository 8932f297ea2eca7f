"""Shared pieces of the CLI: the consoles, JSON output, the one-line error exit and notes.

Text that is not ours (user input, paths, run names, exception messages) must never reach
Rich as markup: ``[/x]`` would crash it and ``wattwise[nvidia]`` would lose its brackets.
:func:`fail` and :class:`NoteHandler` print their message as plain text; everything else
that mixes our styling with such text passes it through :func:`rich.markup.escape`.

``--quiet`` (see :func:`set_quiet`) silences :data:`err_console` (notes, warnings, progress,
what-is-happening lines); errors from :func:`fail` still print, and stdout is untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import platformdirs
import typer
from rich.console import Console
from rich.text import Text

from wattwise._extras import MissingExtra, require
from wattwise.protocol import LeverContext, Progress, meters_from_spec
from wattwise.tracking._tracker import NOTE_ONCE_ATTR

__all__ = [
    "EXIT_USAGE",
    "STATE_DIR_ENV",
    "MetersOpt",
    "NoteHandler",
    "console",
    "err_console",
    "fail",
    "lever_context",
    "need",
    "print_json",
    "set_quiet",
    "state_dir",
    "summary_console",
]

#: Exit status for bad input, a missing file, an unreachable store (typer uses 2 too).
EXIT_USAGE = 2

#: Environment variable naming the directory where the CLI remembers what it has told you.
STATE_DIR_ENV = "WATTWISE_STATE_DIR"

_NOTES_FILE = "notes-shown.json"

console = Console()
#: stderr for notes, warnings and progress: silenced by ``--quiet``.
err_console = Console(stderr=True)
#: stderr for a command's result when stdout is not ours (``run``: the command's output):
#: data, so never silenced.
summary_console = Console(stderr=True)
_error_console = Console(stderr=True)

#: ``--meters``: what measures each run (``replay:PATH`` plays a ``runs export`` trace CSV).
MetersOpt = Annotated[
    str,
    typer.Option(
        "--meters",
        help="auto (detect RAPL, NVML, else estimate) or replay:PATH (a trace CSV of "
        "'wattwise runs export --format csv', played back looped).",
    ),
]


def lever_context(
    meters: str = "auto",
    store: str | None = None,
    scope: str = "machine",
    progress: Progress | None = None,
) -> LeverContext:
    """The lever context the CLI options give (a bad value raises ConfigError/DataFileError,
    which the CLI prints as one line)."""
    return LeverContext.of(
        meters=meters_from_spec(meters), store=store, scope=scope, progress=progress
    )


def set_quiet(quiet: bool) -> None:
    """Silence (or not) notes, warnings and progress on stderr; errors always print."""
    err_console.quiet = quiet


def state_dir() -> Path:
    """Where the CLI keeps its small state: ``$WATTWISE_STATE_DIR`` or the user state dir."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_state_dir("wattwise"))


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, machine-readable, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear line on stderr and exit.

    Args:
        message: what is wrong and what to do, one line, plain text (never markup).
        code: the exit status.
    """
    _error_console.print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )
    raise SystemExit(code)


def _shown_before(message: str) -> bool:
    """Whether ``message`` was shown on an earlier run; records it as shown if not.

    The state file holds hashes of the messages. When it cannot be read or written (a
    read-only home, say) the note is shown every time rather than never.
    """
    key = hashlib.sha256(message.encode()).hexdigest()[:32]
    path = state_dir() / _NOTES_FILE
    try:
        shown = set(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        shown = set()
    if key in shown:
        return True
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(sorted(shown | {key})), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
    return False


class NoteHandler(logging.Handler):
    """Shows wattwise's warnings on stderr as ``note:`` lines (stdout stays for data).

    The message is printed as plain text. A record marked with :data:`NOTE_ONCE_ATTR` is
    shown only the first time this machine sees it (``wattwise meters`` always shows it).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        if err_console.quiet:
            return  # not shown, so not remembered as shown either
        message = record.getMessage()
        if getattr(record, NOTE_ONCE_ATTR, False) and _shown_before(message):
            return
        err_console.print(
            Text.assemble(("note:", "yellow"), " ", message), highlight=False, soft_wrap=True
        )


def need(what: str, extra: str, modules: list[str] | None = None) -> None:
    """Exit with one line unless the optional packages ``what`` needs are installed.

    Called first thing in a command, so a missing extra is said before any work starts.
    See :func:`wattwise._extras.require` for the arguments.
    """
    try:
        require(what, extra, modules)
    except MissingExtra as exc:
        fail(str(exc))
