"""``wattwise study``: architectures, layers and training environments compared on the
same work, repeated, with medians, spread and significance; stored as studies."""

from __future__ import annotations

from typing import Annotated

import typer

from wattwise._errors import ConfigError
from wattwise.cli._study_options import (
    BatchSize,
    Dataset,
    Device,
    Epochs,
    Lr,
    Optimizer,
    Repeats,
    Stop,
    StudyOptions,
    Threads,
    WithinPp,
    study_options,
)
from wattwise.cli._study_render import (
    render_architectures,
    render_environments,
    render_layers,
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


# -- commands ----------------------------------------------------------------------------


@study_app.command("architectures")
@study_options()
def architectures(
    options: StudyOptions,
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
) -> None:
    """Train each model under the same budget and stop rules, repeated, and compare them.

    Energy, time, accuracy, the Pareto front, and the energy the cheapest model within
    --within-pp of the best accuracy saves against the most accurate one."""
    from wattwise.studies import study_architectures
    from wattwise.train import parse_stop
    from wattwise.workloads import load_dataset

    method = options.method(repeats)
    context = options.context()
    rules = [parse_stop(s) for s in stop or []]
    data = load_dataset(dataset)
    with options.progress() as progress:
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
            name=options.name,
            context=context.with_(progress=progress),
        )
    options.show(study, render_architectures)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    dims = [d for d in _ints(text.replace("x", ","), "input shape") if d is not None]
    if len(dims) != 3 or any(d < 1 for d in dims):
        raise ConfigError(f"--input-shape must be C,H,W (e.g. 3,32,32), got {text!r}")
    return tuple(dims)


@study_app.command("layers")
@study_options()
def layers(
    options: StudyOptions,
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
) -> None:
    """Per-layer FLOPs, parameters, time share and attributed energy of training steps.

    Forward+backward time is profiled per layer; the measured energy of training steps is
    attributed by time share, and grouped by layer type."""
    from wattwise.studies import study_layers
    from wattwise.train import parse_stop
    from wattwise.workloads import load_dataset

    method = options.method(repeats)
    context = options.context()
    rules = [parse_stop(s) for s in stop or []]
    shape = _shape(input_shape)
    if shape is not None and (variants or variant):
        raise ConfigError("variants are trained on --dataset: leave out --input-shape")
    data = load_dataset(dataset) if shape is None else None
    chosen: bool | list[str] = list(variant) if variant else variants
    with options.progress() as progress:
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
            name=options.name,
            context=context.with_(progress=progress),
        )
    options.show(study, render_layers)


@study_app.command("environments")
@study_options()
def environments(
    options: StudyOptions,
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
) -> None:
    """The same training under every combination of the settings, and the cheapest one.

    The first value of each list is the baseline; the recommendation is the cheapest
    setting within --within-pp of the baseline's accuracy. On a GPU: its utilisation, and
    whether it is oversized."""
    from wattwise.studies import study_environments
    from wattwise.train import parse_stop
    from wattwise.workloads import load_dataset

    method = options.method(repeats)
    context = options.context()
    rules = [parse_stop(s) for s in stop or []]
    thread_list = _ints(threads, "thread count", allow_default=True)
    batches = [b for b in _ints(batch_sizes, "batch size") if b is not None]
    data = load_dataset(dataset)
    with options.progress() as progress:
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
            name=options.name,
            context=context.with_(progress=progress),
        )
    options.show(study, render_environments)
