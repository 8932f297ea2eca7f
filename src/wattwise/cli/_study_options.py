"""The options the ``wattwise study`` commands share, in one place.

The typer option aliases (``Repeats``, ``Threads``...) every study command takes, and
:func:`study_options`: a decorator that appends the options every study ends with
(``--warmup-batches`` ... ``--json``, in that order in the help) to a command's signature,
hands them to it bundled as one frozen :class:`StudyOptions`, and runs it under the checks
every study shares (the torch extra; a WattwiseError is one line, exit 2)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar, get_type_hints

import typer

from wattwise._errors import WattwiseError
from wattwise.cli._common import MetersOpt, fail, lever_context, need, print_json
from wattwise.cli._progress import progress_bar
from wattwise.protocol import LeverContext
from wattwise.protocol import Progress as ProgressFn

if TYPE_CHECKING:
    from wattwise.studies import StudyMethod

__all__ = ["StudyOptions", "study_options"]

Dataset = Annotated[
    str,
    typer.Option(
        help="digits, mnist1d[:OPTIONS], synthetic[:OPTIONS], cifar10:PATH, fashion-mnist:PATH..."
    ),
]
Epochs = Annotated[int, typer.Option(help="Epochs planned for every run.")]
Stop = Annotated[
    list[str] | None,
    typer.Option(help="Stop rule shared by every run, repeatable: target:0.95, plateau:3..."),
]
Repeats = Annotated[int, typer.Option(help="Measured runs per configuration.")]
Warmup = Annotated[
    int, typer.Option(help="Untracked training steps before a configuration's first run.")
]
Cooldown = Annotated[
    float, typer.Option("--cooldown", help="Seconds to sleep between measured runs.")
]
Test = Annotated[str, typer.Option(help="Significance test: mannwhitney or welch.")]
Alpha = Annotated[float, typer.Option(help="Significance level.")]
ScopeOpt = Annotated[
    str, typer.Option(help="machine (all the meters see) or process (this process's share).")
]
Seed = Annotated[int, typer.Option(help="Seed of repeat 1 (repeat r uses seed + r - 1).")]
WithinPp = Annotated[
    float, typer.Option(help="Accuracy tolerance of the headline, in percentage points.")
]
BatchSize = Annotated[int, typer.Option(help="Training batch size.")]
Lr = Annotated[float, typer.Option(help="Learning rate.")]
Optimizer = Annotated[str, typer.Option(help="adam, adamw or sgd.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Threads = Annotated[int | None, typer.Option(help="PyTorch threads (default: PyTorch's).")]
Name = Annotated[str | None, typer.Option(help="Name of the study.")]
Store = Annotated[
    str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]


#: The options of the significance test, left out where a study tests nothing.
_SIGNIFICANCE = ("test", "alpha")


class _Study(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


_S = TypeVar("_S", bound=_Study)


@dataclass(frozen=True)
class StudyOptions:
    """The options every study ends with, as given on the command line: its fields are
    the options, in the order the help lists them, with their defaults."""

    warmup_batches: Warmup = 10
    cooldown_s: Cooldown = 0.0
    test: Test = "mannwhitney"
    alpha: Alpha = 0.05
    scope: ScopeOpt = "machine"
    seed: Seed = 0
    name: Name = None
    store: Store = None
    meters: MetersOpt = "auto"
    json_out: JsonOut = False

    def method(self, repeats: int) -> StudyMethod:
        """The study method of ``repeats`` runs and these options (checked at once)."""
        from wattwise.studies import StudyMethod

        return StudyMethod.of(
            repeats=repeats,
            warmup_batches=self.warmup_batches,
            cooldown_s=self.cooldown_s,
            test=self.test.lower(),
            alpha=self.alpha,
            seed=self.seed,
        )

    def context(self) -> LeverContext:
        """The lever context of ``--meters``, ``--store`` and ``--scope`` (checked at once)."""
        return lever_context(self.meters, self.store, self.scope.lower())

    def progress(self) -> AbstractContextManager[ProgressFn | None]:
        """A progress bar on stderr, shown once the study has checked its input (none with
        --json)."""
        return progress_bar("measured runs", quiet=self.json_out)

    def show(self, study: _S, render: Callable[[_S], None]) -> None:
        """Print the study: as JSON with --json, else ``render``'s tables."""
        if self.json_out:
            print_json(study.to_dict())
        else:
            render(study)


def study_options(
    *, significance: bool = True
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a study command the shared options: ``command(options, **own)`` becomes a typer
    command of its own options followed by ``--warmup-batches`` ... ``--json`` (without
    ``--test`` and ``--alpha`` unless ``significance``), run under the shared checks."""
    hints = get_type_hints(StudyOptions, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name]
        )
        for f in fields(StudyOptions)
        if significance or f.name not in _SIGNIFICANCE
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            options = StudyOptions(**{p.name: values.pop(p.name) for p in shared})
            need("wattwise study", "torch", ["torch", "torchvision", "sklearn", "scipy"])
            try:
                command(options, **values)
            except WattwiseError as exc:
                fail(str(exc))

        params = [*own, *shared]
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
