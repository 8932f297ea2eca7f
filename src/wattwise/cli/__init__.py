"""The ``wattwise`` command. One module per command group; this module mounts them."""

from __future__ import annotations

import logging

import typer

from wattwise._errors import WattwiseError
from wattwise.cli._carbon import carbon_app
from wattwise.cli._common import NoteHandler, fail
from wattwise.cli._demo import demo
from wattwise.cli._infer import infer_app
from wattwise.cli._meters import meters
from wattwise.cli._report import report
from wattwise.cli._run import run
from wattwise.cli._runs import runs_app
from wattwise.cli._schedule import schedule
from wattwise.cli._study import study_app
from wattwise.cli._sweep import sweep_app
from wattwise.cli._train import train
from wattwise.cli._zoo import zoo

__all__ = ["app", "main"]

app = typer.Typer(
    name="wattwise",
    help="Measure, compare and cut the energy and carbon of deep learning, honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(
    "run",
    context_settings={"allow_interspersed_args": False},
)(run)
app.command("meters")(meters)
app.command("demo")(demo)
app.command("report")(report)
app.add_typer(runs_app, name="runs")
app.add_typer(carbon_app, name="carbon")
app.command("schedule")(schedule)
app.command("train")(train)
app.add_typer(study_app, name="study")
app.add_typer(infer_app, name="infer")
app.add_typer(sweep_app, name="sweep")
app.command("zoo")(zoo)


def main() -> None:
    """Entry point of the console script: run the app, turning our errors into one line."""
    logger = logging.getLogger("wattwise")
    logger.addHandler(NoteHandler())
    logger.propagate = False
    try:
        app()
    except WattwiseError as exc:
        fail(str(exc))
