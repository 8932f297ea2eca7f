"""``wattwise study``: architectures, layers and training environments compared on the
same work, repeated, with medians, spread and significance; stored as studies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wattwise._errors import ConfigError, WattwiseError
from wattwise.cli._common import (
    MetersOpt,
    err_console,
    fail,
    lever_context,
    need,
    print_json,
)
from wattwise.cli._study_render import (
    render_architectures,
    render_environments,
    render_layers,
)
from wattwise.protocol import LeverContext

if TYPE_CHECKING:
    from wattwise.studies import (
        StudyMethod,
    )

__all__ = ["split_models", "study_app"]

study_app = typer.Typer(
    help="Compare models, layers and training environments on the same work.",
    no_args_is_help=True,
)

#: Default models of ``study architectures``: a family from tiny to large.
DEFAULT_MODELS = "mlp:depth=0,mlp,cnn,cnn:depth=3,width=32"


def split_models(text: str) -> list[str]:
    """Split a model list at commas, keeping a spec's options together:
    ``mlp,cnn:depth=3,width=32`` -> ``["mlp", "cnn:depth=3,width=32"]`` (a model name never
    holds ``=``, an option always does)."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and out:
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def _ints(text: str, what: str, *, allow_default: bool = False) -> list[int | None]:
    out: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if allow_default and part.lower() == "default":
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ConfigError(f"bad {what} {part!r}: give integers separated by commas") from None
    return out


def _words(text: str) -> list[str]:
    return [p.strip().lower() for p in text.split(",") if p.strip()]


# -- shared options ----------------------------------------------------------------------

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
Cooldown = Annotated[float, typer.Option(help="Seconds to sleep between measured runs.")]
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


def _method(
    repeats: int,
    warmup_batches: int,
    cooldown: float,
    test: str,
    alpha: float,
    seed: int,
) -> StudyMethod:
    from wattwise.studies import StudyMethod

    return StudyMethod.of(
        repeats=repeats,
        warmup_batches=warmup_batches,
        cooldown_s=cooldown,
        test=test.lower(),
        alpha=alpha,
        seed=seed,
    )


def _context(meters: str, store: str | None, scope: str) -> LeverContext:
    """The lever context of ``--meters``, ``--store`` and ``--scope`` (checked at once)."""
    return lever_context(meters, store, scope.lower())


@contextmanager
def _progress(json_out: bool) -> Iterator[Callable[[int, int, str], None] | None]:
    """A progress bar on stderr, shown once the study has checked its input (none with
    --json)."""
    if json_out:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("measured runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=err_console,
        transient=True,
    )
    tasks: list[Any] = []

    def told(done: int, planned: int, label: str) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("runs", total=planned, info=""))
        bar.update(tasks[0], completed=done, total=planned, info=label)

    try:
        yield told
    finally:
        if tasks:
            bar.stop()


def _guard(work: Callable[[], None]) -> None:
    need("wattwise study", "torch", ["torch", "torchvision", "sklearn", "scipy"])
    try:
        work()
    except WattwiseError as exc:
        fail(str(exc))


# -- commands ----------------------------------------------------------------------------


@study_app.command("architectures")
def architectures(
    dataset: Dataset = "digits",
    models: Annotated[
        str,
        typer.Option(
            help="Models, comma-separated (options stay with their model). Default: "
            + ", ".join(split_models(DEFAULT_MODELS))
            + ".",
            show_default=False,
        ),
    ] = DEFAULT_MODELS,
    epochs: Epochs = 10,
    stop: Stop = None,
    repeats: Repeats = 5,
    within_pp: WithinPp = 1.0,
    batch_size: BatchSize = 64,
    lr: Lr = 1e-3,
    optimizer: Optimizer = "adam",
    device: Device = "auto",
    threads: Threads = None,
    warmup_batches: Warmup = 10,
    cooldown: Cooldown = 0.0,
    test: Test = "mannwhitney",
    alpha: Alpha = 0.05,
    scope: ScopeOpt = "machine",
    seed: Seed = 0,
    name: Name = None,
    store: Store = None,
    meters: MetersOpt = "auto",
    json_out: JsonOut = False,
) -> None:
    """Train each model under the same budget and stop rules, repeated, and compare them.

    Energy, time, accuracy, the Pareto front, and the energy the cheapest model within
    --within-pp of the best accuracy saves against the most accurate one."""

    def work() -> None:
        from wattwise.studies import study_architectures
        from wattwise.train import parse_stop
        from wattwise.workloads import load_dataset

        method = _method(repeats, warmup_batches, cooldown, test, alpha, seed)
        context = _context(meters, store, scope)
        rules = [parse_stop(s) for s in stop or []]
        data = load_dataset(dataset)
        with _progress(json_out) as progress:
            study = study_architectures(
                split_models(models),
                data,
                epochs=epochs,
                stop=rules,
                batch_size=batch_size,
                lr=lr,
                optimizer=optimizer,
                device=device,
                threads=threads,
                within_pp=within_pp,
                method=method,
                name=name,
                context=context.with_(progress=progress),
            )
        if json_out:
            print_json(study.to_dict())
        else:
            render_architectures(study)

    _guard(work)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    dims = [d for d in _ints(text.replace("x", ","), "input shape") if d is not None]
    if len(dims) != 3 or any(d < 1 for d in dims):
        raise ConfigError(f"--input-shape must be C,H,W (e.g. 3,32,32), got {text!r}")
    return tuple(dims)


@study_app.command("layers")
def layers(
    model: Annotated[str, typer.Option(help="The model: cnn, mlp, cnn:depth=3, resnet18...")],
    dataset: Dataset = "digits",
    input_shape: Annotated[
        str | None,
        typer.Option(help="Profile on random inputs of this shape (C,H,W) instead of the data."),
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes of the random labels with --input-shape.")
    ] = None,
    variants: Annotated[
        bool,
        typer.Option(
            "--variants", help="Train narrower and shallower variants and compare with the model."
        ),
    ] = False,
    variant: Annotated[
        list[str] | None, typer.Option(help="A variant to train (model spec), repeatable.")
    ] = None,
    batch_size: BatchSize = 64,
    window: Annotated[
        float, typer.Option(help="Shortest measured window of training steps, in s.")
    ] = 2.0,
    profile_steps: Annotated[
        int, typer.Option(help="Profiled steps after each measured window.")
    ] = 10,
    epochs: Annotated[int, typer.Option(help="Epochs planned for variant training.")] = 5,
    stop: Stop = None,
    repeats: Repeats = 5,
    lr: Lr = 1e-3,
    optimizer: Optimizer = "adam",
    device: Device = "auto",
    threads: Threads = None,
    warmup_batches: Warmup = 10,
    cooldown: Cooldown = 0.0,
    test: Test = "mannwhitney",
    alpha: Alpha = 0.05,
    scope: ScopeOpt = "machine",
    seed: Seed = 0,
    name: Name = None,
    store: Store = None,
    meters: MetersOpt = "auto",
    json_out: JsonOut = False,
) -> None:
    """Per-layer FLOPs, parameters, time share and attributed energy of training steps.

    Forward+backward time is profiled per layer; the measured energy of training steps is
    attributed by time share, and grouped by layer type."""

    def work() -> None:
        from wattwise.studies import study_layers
        from wattwise.train import parse_stop
        from wattwise.workloads import load_dataset

        method = _method(repeats, warmup_batches, cooldown, test, alpha, seed)
        context = _context(meters, store, scope)
        rules = [parse_stop(s) for s in stop or []]
        shape = _shape(input_shape)
        if shape is not None and (variants or variant):
            raise ConfigError("variants are trained on --dataset: leave out --input-shape")
        data = load_dataset(dataset) if shape is None else None
        chosen: bool | list[str] = list(variant) if variant else variants
        with _progress(json_out) as progress:
            study = study_layers(
                model,
                data=data,
                input_shape=shape,
                num_classes=num_classes,
                batch_size=batch_size,
                device=device,
                threads=threads,
                window_s=window,
                profile_steps_per_repeat=profile_steps,
                variants=chosen,
                epochs=epochs,
                stop=rules,
                lr=lr,
                optimizer=optimizer,
                method=method,
                name=name,
                context=context.with_(progress=progress),
            )
        if json_out:
            print_json(study.to_dict())
        else:
            render_layers(study)

    _guard(work)


@study_app.command("environments")
def environments(
    model: Annotated[str, typer.Option(help="The model: mlp, cnn, resnet18...")],
    dataset: Dataset = "digits",
    threads: Annotated[
        str, typer.Option(help="Thread counts, comma-separated ('default': PyTorch's).")
    ] = "default",
    batch_sizes: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "64",
    precision: Annotated[str, typer.Option(help="Precisions: fp32, bf16.")] = "fp32",
    device: Annotated[str, typer.Option(help="Devices: cpu, cuda, cuda:N, auto.")] = "auto",
    epochs: Epochs = 5,
    stop: Stop = None,
    repeats: Repeats = 5,
    within_pp: WithinPp = 1.0,
    lr: Lr = 1e-3,
    optimizer: Optimizer = "adam",
    warmup_batches: Warmup = 10,
    cooldown: Cooldown = 0.0,
    test: Test = "mannwhitney",
    alpha: Alpha = 0.05,
    scope: ScopeOpt = "machine",
    seed: Seed = 0,
    name: Name = None,
    store: Store = None,
    meters: MetersOpt = "auto",
    json_out: JsonOut = False,
) -> None:
    """The same training under every combination of the settings, and the cheapest one.

    The first value of each list is the baseline; the recommendation is the cheapest
    setting within --within-pp of the baseline's accuracy. On a GPU: its utilisation, and
    whether it is oversized."""

    def work() -> None:
        from wattwise.studies import study_environments
        from wattwise.train import parse_stop
        from wattwise.workloads import load_dataset

        method = _method(repeats, warmup_batches, cooldown, test, alpha, seed)
        context = _context(meters, store, scope)
        rules = [parse_stop(s) for s in stop or []]
        thread_list = _ints(threads, "thread count", allow_default=True)
        batches = [b for b in _ints(batch_sizes, "batch size") if b is not None]
        data = load_dataset(dataset)
        with _progress(json_out) as progress:
            study = study_environments(
                model,
                data,
                threads=thread_list,
                batch_sizes=batches,
                precisions=_words(precision),
                devices=_words(device),
                epochs=epochs,
                stop=rules,
                lr=lr,
                optimizer=optimizer,
                within_pp=within_pp,
                method=method,
                name=name,
                context=context.with_(progress=progress),
            )
        if json_out:
            print_json(study.to_dict())
        else:
            render_environments(study)

    _guard(work)
