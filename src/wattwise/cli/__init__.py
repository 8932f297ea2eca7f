"""The ``wattwise`` command. One module per command group; this module mounts them."""

from __future__ import annotations

import typer

from wattwise._errors import WattwiseError
from wattwise.cli._common import fail

__all__ = ["app", "main"]

app = typer.Typer(
    name="wattwise",
    help="Measure, compare and cut the energy and carbon of deep learning, honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point of the console script: run the app, turning our errors into one line."""
    try:
        app()
    except WattwiseError as exc:
        fail(str(exc))
