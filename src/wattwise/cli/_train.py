"""``wattwise train``: train a classifier, measuring each epoch, with energy-saving levers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise.cli._common import (
    MetersOpt,
    console,
    err_console,
    fail,
    lever_context,
    need,
    print_json,
)
from wattwise.cli._render import format_energy
from wattwise.tracking._tracker import Tracker

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from torch import nn

    from wattwise.train import Checkpoint, EpochRecord, FitResult, TrainState
    from wattwise.workloads import DataSplit

__all__ = ["EXIT_INTERRUPTED", "train"]

#: Exit status after Ctrl-C (128 + SIGINT, as shells report it); the run is stored as
#: interrupted, with the epochs it completed, and its summary is printed.
EXIT_INTERRUPTED = 130


#: More epochs than any run on the bundled data needs; a typo, not a plan.
MAX_EPOCHS = 100_000


def _progress_callback(progress: Progress) -> Any:
    from wattwise.train import Callback

    class _Live(Callback):
        """One bar per epoch with the live energy of the epoch and of the run."""

        def __init__(self) -> None:
            self.task: TaskID | None = None
            self.epoch_start_j = 0.0
            self.last_update = 0.0

        def _fields(self, state: TrainState) -> str:
            total = state.tracker.energy_j
            return f"{format_energy(total - self.epoch_start_j)} · run {format_energy(total)}"

        def on_batch_end(self, state: TrainState) -> None:
            if state.batch == 1:
                self.epoch_start_j = state.tracker.energy_j
                self.task = progress.add_task(
                    f"epoch {state.epoch}/{state.planned_epochs}",
                    total=state.batches_per_epoch,
                    info="",
                )
            now = time.monotonic()
            assert self.task is not None
            if now - self.last_update > 0.2 or state.batch == state.batches_per_epoch:
                progress.update(self.task, completed=state.batch, info=self._fields(state))
                self.last_update = now

        def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
            if self.task is None:
                return
            progress.update(
                self.task,
                completed=state.batches_per_epoch,
                info=(
                    f"{format_energy(record.energy_j)} ({record.source.split(' ')[0]}) · "
                    f"val acc {record.val_accuracy:.4f} · loss {record.val_loss:.4f}"
                ),
            )
            self.task = None

    return _Live()


def _render(result: FitResult, console: Console, extra: dict[str, Any]) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("epoch", "energy", "power", "time", "val acc", "val loss"):
        table.add_column(col, justify="right")
    for e in result.epochs:
        table.add_row(
            str(e.epoch),
            format_energy(e.energy_j),
            f"{e.mean_power_w:.1f} W",
            f"{e.duration_s:.2f} s",
            f"{e.val_accuracy:.4f}",
            f"{e.val_loss:.4f}",
        )
    console.print(table)
    lines = [
        f"stopped   {result.stop_reason}",
        f"energy    {format_energy(result.total_energy_j)} ± "
        f"{format_energy(result.total_uncertainty_j)} — {result.energy_source}",
    ]
    p = result.prediction
    if p is not None:
        lines.append(
            f"planned   {p.planned_epochs} epochs: {format_energy(p.total_j)} ± "
            f"{format_energy(p.sigma_j)} PREDICTED ({p.describe()})"
        )
        share = result.energy_saved_j / p.total_j if p.total_j > 0 else 0.0
        lines.append(
            f"saved     {format_energy(result.energy_saved_j)} ({share:.0%} of the planned run; "
            "predicted, not measured)"
        )
    if result.final_val_accuracy is not None:
        lines.append(
            f"accuracy  {result.final_val_accuracy:.4f} final, "
            f"{result.best_val_accuracy:.4f} best (validation)"
        )
    if extra.get("extended_classes"):
        lines.append(f"extended  new classes {', '.join(extra['extended_classes'])}")
    if extra.get("emissions_g") is not None:
        lines.append(
            f"carbon    {extra['emissions_g']:.4g} gCO2e ({extra['zone']}, "
            f"{extra['intensity_g_per_kwh']:.0f} gCO2e/kWh)"
        )
    if extra.get("checkpoint"):
        lines.append(f"saved to  {extra['checkpoint']}")
    if extra.get("checkpoint_skipped"):
        lines.append(f"not saved {extra['checkpoint_skipped']}")
    status = " (stored as interrupted)" if result.interrupted else ""
    lines.append(f"run       {result.run_id[:12]}{status}")
    for line in lines:
        console.print("  " + line, highlight=False, markup=False)


def _check_mlflow() -> None:
    """WATTWISE_MLFLOW asks for MLflow logging: a missing MLflow or a bad value is one line
    before any work (``fit`` checks it too, later)."""
    from wattwise.train._mlflow import ENV_VAR, mlflow_logger

    try:
        logger = mlflow_logger(None)
    except ConfigError as exc:
        fail(str(exc))
    if logger is not None and not logger.start_run and not os.environ.get("MLFLOW_RUN_ID"):
        fail(
            f"{ENV_VAR}=1 logs to the active MLflow run, and a command has none: set "
            f"MLFLOW_RUN_ID to a run's id, or {ENV_VAR}=start to start one"
        )


def train(
    model: Annotated[
        str | None,
        typer.Option(
            help="mlp, cnn (options: cnn:depth=3,width=32), cnn1d and gru (for mnist1d) or a "
            "torchvision model "
            "(resnet18, mobilenet_v3_small...). Default with --init: the checkpoint's."
        ),
    ] = None,
    dataset: Annotated[
        str,
        typer.Option(
            help="digits, mnist1d[:OPTIONS], synthetic[:OPTIONS], cifar10:PATH, "
            "fashion-mnist:PATH, imagefolder:PATH."
        ),
    ] = "digits",
    classes: Annotated[
        str | None, typer.Option(help="Keep these classes only: 0-7, 0,2,5.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs planned.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[
        float, typer.Option(help="Learning rate (of the head, with --finetune-lr).")
    ] = 1e-3,
    finetune_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of everything but the classifier head (fine-tuning)."),
    ] = None,
    optimizer: Annotated[str, typer.Option(help="adam, adamw or sgd.")] = "adam",
    stop: Annotated[
        list[str] | None,
        typer.Option(
            help="Stop rule, repeatable: curve[:0.5pp[:5]] (a fitted learning curve predicts "
            "the remaining epochs gain less than 0.5 pp), target:0.95, plateau[:5[:0.001]], "
            "budget:2kJ, budget:0.01kWh, budget:5gCO2e (with --intensity).",
        ),
    ] = None,
    intensity: Annotated[
        float | None,
        typer.Option(help="Grid intensity in gCO2e/kWh, for a budget in gCO2e."),
    ] = None,
    init: Annotated[
        Path | None, typer.Option(help="Start from this checkpoint (transfer learning).")
    ] = None,
    extend_classes: Annotated[
        bool,
        typer.Option(
            "--extend-classes", help="Add the data's new classes to the checkpoint's head."
        ),
    ] = False,
    freeze: Annotated[
        list[str] | None,
        typer.Option(help="Freeze parameters matching this pattern (features.*), repeatable."),
    ] = None,
    unfreeze: Annotated[
        list[str] | None,
        typer.Option(help="Unfreeze parameters matching this pattern, after --freeze."),
    ] = None,
    save: Annotated[Path | None, typer.Option(help="Write a checkpoint here at the end.")] = None,
    tensorboard: Annotated[
        Path | None, typer.Option(help="Write TensorBoard logs to this folder.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    download: Annotated[
        bool, typer.Option("--download", help="Fetch CIFAR-10 / Fashion-MNIST into PATH.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    meters: MetersOpt = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a classifier, measuring each epoch's energy; stop early to save energy.

    Every energy figure says whether it was measured (which sensor) or estimated; the
    energy saved by an early stop is a prediction of the full planned run minus what was
    measured.
    """
    need("wattwise train", "torch", ["torch", "torchvision", "sklearn"])
    if tensorboard is not None:
        need("wattwise train --tensorboard", "torch", ["tensorboard"])
    _check_mlflow()
    try:
        _train(
            _Options(
                model=model,
                dataset=dataset,
                classes=classes,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                finetune_lr=finetune_lr,
                optimizer=optimizer,
                stop=stop or [],
                intensity=intensity,
                init=init,
                extend_classes=extend_classes,
                freeze=freeze or [],
                unfreeze=unfreeze or [],
                save=save,
                tensorboard=tensorboard,
                seed=seed,
                device=device,
                download=download,
                name=name,
                store=store,
                meters=meters,
                json_out=json_out,
            )
        )
    except WattwiseError as exc:
        fail(str(exc))
    except KeyboardInterrupt:  # before the first epoch: fit() handles it from there on
        fail("interrupted before training started: nothing was recorded", code=EXIT_INTERRUPTED)


@dataclass(frozen=True)
class _Options:
    """The options of ``wattwise train``, as given."""

    model: str | None
    dataset: str
    classes: str | None
    epochs: int
    batch_size: int
    lr: float
    finetune_lr: float | None
    optimizer: str
    stop: list[str]
    intensity: float | None
    init: Path | None
    extend_classes: bool
    freeze: list[str]
    unfreeze: list[str]
    save: Path | None
    tensorboard: Path | None
    seed: int
    device: str
    download: bool
    name: str | None
    store: str | None
    meters: str
    json_out: bool


@dataclass
class _Model:
    """The network to train, where it comes from, and what the options did to it."""

    net: nn.Module
    spec: str
    added: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    lr_groups: dict[str, float] = field(default_factory=dict)
    base_lr: float = 1e-3


def _train(opts: _Options) -> None:
    from wattwise import train as tr
    from wattwise.workloads import load_dataset, parse_classes

    rules = [tr.parse_stop(s, intensity_g_per_kwh=opts.intensity) for s in opts.stop]
    if not 1 <= opts.epochs <= MAX_EPOCHS:
        raise ConfigError(f"--epochs must be between 1 and {MAX_EPOCHS}, got {opts.epochs}")
    if opts.extend_classes and opts.init is None:
        raise ConfigError("--extend-classes extends a checkpoint's head: give --init CKPT")
    if opts.model is None and opts.init is None:
        raise ConfigError("give --model NAME (or --init CKPT to start from a checkpoint)")
    context = lever_context(opts.meters, opts.store)  # bad meters fail before any work
    wanted = parse_classes(opts.classes) if opts.classes else None
    ckpt = tr.load_checkpoint(opts.init) if opts.init is not None else None
    if (
        ckpt is not None
        and opts.model is not None
        and opts.model.lower() != ckpt.model_spec.lower()
    ):
        raise ConfigError(
            f"--model {opts.model} does not match checkpoint {opts.init}, which holds "
            f"{ckpt.model_spec}"
        )
    tr.resolve_device(opts.device)  # a bad device fails before the data is loaded
    tr.seed_everything(opts.seed)
    data = load_dataset(opts.dataset, classes=wanted, download=opts.download)
    m = _model(opts, ckpt, data)
    run_name = opts.name or f"train {m.spec} on {opts.dataset}" + (
        f" classes {opts.classes}" if opts.classes else ""
    )
    tracker = context.tracker(run_name)
    result, interrupted = _fit(opts, m, data, rules, tracker, run_name)
    checkpoint = None
    if opts.save is not None and not interrupted:  # a half-trained model overwrites nothing
        checkpoint = tr.save_checkpoint(
            opts.save,
            m.net,
            model_spec=m.spec,
            class_names=data.class_names,
            input_shape=data.input_shape,
            dataset=data.name,
            metrics={
                "val_accuracy": result.final_val_accuracy or 0.0,
                "energy_j": result.total_energy_j,
            },
        )
    extra = _extra(opts, m, data, tracker, checkpoint, interrupted)
    if opts.json_out:
        print_json({**extra, **result.to_dict()})
    else:
        _render(result, console, extra)
    if interrupted:
        raise SystemExit(EXIT_INTERRUPTED)


def _model(opts: _Options, ckpt: Checkpoint | None, data: DataSplit) -> _Model:
    """The network: from the checkpoint or built, frozen and grouped by learning rate."""
    from wattwise import train as tr
    from wattwise.workloads import build_model, find_head

    if ckpt is not None:
        net = tr.model_from_checkpoint(
            ckpt,
            class_names=data.class_names,
            input_shape=data.input_shape,
            extend=opts.extend_classes,
        )
        added = [c for c in data.class_names if c not in ckpt.class_names]
        m = _Model(net, ckpt.model_spec, added)
    else:
        assert opts.model is not None
        net = build_model(opts.model, input_shape=data.input_shape, num_classes=data.num_classes)
        m = _Model(net, opts.model)
    m.frozen = tr.freeze(net, opts.freeze) if opts.freeze else []
    if opts.unfreeze:
        thawed = set(tr.unfreeze(net, opts.unfreeze))
        m.frozen = [n for n in m.frozen if n not in thawed]
    m.base_lr = opts.lr
    if opts.finetune_lr is not None:
        head_name, _ = find_head(net)
        m.lr_groups = {f"{head_name}.*": opts.lr}
        m.base_lr = opts.finetune_lr
    return m


def _fit(
    opts: _Options,
    m: _Model,
    data: DataSplit,
    rules: list[Any],
    tracker: Tracker,
    run_name: str,
) -> tuple[FitResult, bool]:
    """Train (with a live progress bar unless --json); the result, and whether Ctrl-C
    interrupted it (the run is stored as interrupted and summarised)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wattwise import train as tr

    callbacks: list[Any] = []
    if opts.tensorboard is not None:
        callbacks.append(tr.TensorBoardCallback(opts.tensorboard))
    hparams = {
        "model": m.spec,
        "init": str(opts.init) if opts.init else "",
        "frozen_params": len(m.frozen),
        "finetune_lr": opts.finetune_lr if opts.finetune_lr is not None else opts.lr,
    }

    def run(extra_callbacks: list[Any]) -> tuple[FitResult, bool]:
        try:
            result = tr.fit(
                m.net,
                data,
                epochs=opts.epochs,
                batch_size=opts.batch_size,
                lr=m.base_lr,
                lr_groups=m.lr_groups,
                optimizer=opts.optimizer,
                stop=rules,
                callbacks=callbacks + extra_callbacks,
                device=opts.device,
                seed=opts.seed,
                tracker=tracker,
                name=run_name,
                hparams=hparams,
            )
        except tr.TrainingInterrupted as exc:  # stored as interrupted; summarised
            return exc.result, True
        return result, False

    if opts.json_out:
        return run([])
    err_console.print(
        f"training [bold]{escape(m.spec)}[/] on {escape(data.name)} ({data.num_classes} classes, "
        f"{len(data.train)} train / {len(data.val)} val), "  # type: ignore[arg-type]
        f"{opts.epochs} epochs planned",
        highlight=False,
    )
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=err_console,
    ) as progress:
        return run([_progress_callback(progress)])


def _extra(
    opts: _Options,
    m: _Model,
    data: DataSplit,
    tracker: Tracker,
    checkpoint: Path | None,
    interrupted: bool,
) -> dict[str, Any]:
    """What the command adds to the fit's result: the model, data, checkpoint, carbon."""
    extra: dict[str, Any] = {
        "model": m.spec,
        "dataset": data.name,
        "classes": list(data.class_names),
        "init": str(opts.init) if opts.init else None,
        "extended_classes": m.added,
        "frozen": m.frozen,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "tensorboard": str(opts.tensorboard) if opts.tensorboard else None,
    }
    carbon = tracker.result.carbon if tracker.result is not None else None
    if carbon is not None:
        extra["emissions_g"] = carbon.emissions_g
        extra["intensity_g_per_kwh"] = carbon.intensity_g_per_kwh
        extra["zone"] = carbon.zone
    if interrupted and opts.save is not None:
        extra["checkpoint_skipped"] = f"{opts.save} not written: the run was interrupted"
    return extra
