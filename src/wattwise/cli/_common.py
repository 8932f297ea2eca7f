"""Shared pieces of the CLI: the consoles, JSON output and the one-line error exit."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

from rich.console import Console

from wattwise._extras import MissingExtra, require

__all__ = [
    "EXIT_USAGE",
    "NoteHandler",
    "console",
    "err_console",
    "fail",
    "need",
    "print_json",
]

#: Exit status for bad input, a missing file, an unreachable store (typer uses 2 too).
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, machine-readable, no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one clear line on stderr and exit.

    Args:
        message: what is wrong and what to do, one line.
        code: the exit status.
    """
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


class NoteHandler(logging.Handler):
    """Shows wattwise's warnings on stderr as ``note:`` lines (stdout stays for data)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(
            f"[yellow]note:[/] {record.getMessage()}", highlight=False, soft_wrap=True
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
