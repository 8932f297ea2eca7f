"""The ``wattwise`` command. One module per command group; this module mounts them."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Annotated, Any

import typer

# typer >= 0.29 vendors click and names its usage errors nowhere public.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperOption

import wattwise.cli._carbon_embodied
import wattwise.cli._runs_recover
import wattwise.cli._study_keypoints
import wattwise.cli._study_snn  # noqa: F401 - registers `study snn` on the study group
from wattwise._errors import WattwiseError
from wattwise.cli._carbon import carbon_app
from wattwise.cli._common import EXIT_USAGE, NoteHandler, fail, set_quiet
from wattwise.cli._demo import demo
from wattwise.cli._exporter import exporter
from wattwise.cli._infer import infer_app
from wattwise.cli._meters import meters
from wattwise.cli._ofa import ofa_app
from wattwise.cli._report import report
from wattwise.cli._run import run
from wattwise.cli._runs import runs_app
from wattwise.cli._schedule import schedule
from wattwise.cli._study import study_app
from wattwise.cli._sweep import sweep_app
from wattwise.cli._train import train
from wattwise.cli._zoo import zoo

__all__ = ["app", "main"]

_display_type_rich = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: Any) -> str | None:
    """Typer's rich help writes ``<bool>`` after every flag: a flag takes no value."""
    return None if self.is_flag else _display_type_rich(self, ctx)


TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]

app = typer.Typer(
    name="wattwise",
    help="Measure, compare and cut the energy and carbon of deep learning, honestly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    # Inherited by every group and command below: `-h` works everywhere.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> str:
    try:
        return _dist_version("wattwise")
    except PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        from wattwise import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"wattwise {_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Errors only on stderr: no notes, warnings or progress. Data on stdout "
            "(tables, JSON, reports) is unchanged.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print `wattwise <version>` and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    set_quiet(quiet)


app.command(
    "run",
    context_settings={"allow_interspersed_args": False},
)(run)
app.command("meters")(meters)
app.command("exporter")(exporter)
app.command("demo")(demo)
app.command("report")(report)
app.add_typer(runs_app, name="runs")
app.add_typer(carbon_app, name="carbon")
app.command("schedule")(schedule)
app.command("train")(train)
app.add_typer(study_app, name="study")
app.add_typer(infer_app, name="infer")
app.add_typer(sweep_app, name="sweep")
app.add_typer(ofa_app, name="ofa")
app.command("zoo")(zoo)


def main() -> None:
    """Entry point of the console script: run the app, turning our errors into one line."""
    logger = logging.getLogger("wattwise")
    logger.addHandler(NoteHandler())
    logger.propagate = False
    try:
        code = app(prog_name="wattwise", standalone_mode=False)
    except WattwiseError as exc:
        fail(str(exc))
    except NoArgsIsHelpError as exc:  # `wattwise` or a group, alone
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
        raise SystemExit(EXIT_USAGE) from None
    except UsageError as exc:
        fail(_usage_line(exc))
    except ClickException as exc:  # e.g. a file typer could not open
        fail(" ".join(exc.format_message().split()), code=exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C outside a command's own handling
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _usage_line(exc: UsageError) -> str:
    """Click's usage error (a box of several lines) as one line that says where to look."""
    message = " ".join(exc.format_message().split()).removesuffix(".")
    where = exc.ctx.command_path if exc.ctx is not None else "wattwise"
    return f"{message} (see `{where} --help`)"
