"""``wattwise study``: architectures, layers and training environments compared on the
same work, repeated, with medians, spread and significance; stored as studies."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise._records import Provenance
from wattwise.cli._common import console, err_console, fail, need, print_json
from wattwise.cli._render import format_energy

if TYPE_CHECKING:
    from wattwise.meters._base import Meter
    from wattwise.studies import (
        ArchitectureStudy,
        Comparison,
        EnvironmentStudy,
        LayerStudy,
        StudyMethod,
        Summary,
    )

__all__ = ["split_models", "study_app"]

study_app = typer.Typer(
    help="Compare models, layers and training environments on the same work.",
    no_args_is_help=True,
)

#: Default models of ``study architectures``: a family from tiny to large.
DEFAULT_MODELS = "mlp:depth=0,mlp,cnn,cnn:depth=3,width=32"


def _meters() -> Callable[[], Sequence[Meter]] | None:
    """The meters of each run: None detects them (tests replace this)."""
    return None


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
    str, typer.Option(help="digits, synthetic[:OPTIONS], cifar10:PATH, fashion-mnist:PATH...")
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
    scope: str,
    seed: int,
) -> StudyMethod:
    from wattwise.studies import StudyMethod

    method = StudyMethod(
        repeats=repeats,
        warmup_batches=warmup_batches,
        cooldown_s=cooldown,
        test=test.lower(),
        alpha=alpha,
        scope=scope.lower(),
        seed=seed,
    )
    method.check()
    return method


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


# -- rendering ---------------------------------------------------------------------------


def _spread(s: Summary, fmt: Callable[[float], str]) -> str:
    """The median, ± half the interquartile range relative to it."""
    if s.n < 2 or s.median == 0:
        return fmt(s.median)
    return f"{fmt(s.median)} ±{s.iqr / 2 / abs(s.median):.0%}"


def _p(c: Comparison | None) -> str:
    if c is None:
        return ""
    if c.p_value is None:
        return "n/a"
    mark = {True: " *", False: "", None: " ?"}[c.significant]
    return f"p={c.p_value:.2g}{mark}"


def _num(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    return table


def _footer(notes: Sequence[str], study_id: str, stored: bool) -> None:
    for note in notes:
        console.print(f"  note: {note}", highlight=False, style="dim", markup=False)
    where = "stored" if stored else "not stored"
    console.print(f"  study {study_id[:12]} ({where})", highlight=False)


def _render_architectures(study: ArchitectureStudy) -> None:
    table = _table(
        "model", "params", "FLOPs", "energy", "time", "val acc", "per pp", "front", "vs best"
    )
    for m in study.models:
        r = m.runs
        per_point = m.energy_per_accuracy_point_j
        vs = ""
        if m.versus is not None:
            vs = f"{m.versus.energy_change_frac:+.0%} {_p(m.versus.energy_test)}"
        table.add_row(
            escape(m.model),
            _num(m.params),
            _num(m.flops),
            _spread(r.energy_j, format_energy),
            _spread(r.duration_s, lambda v: f"{v:.2f} s"),
            _spread(r.val_accuracy, lambda v: f"{v:.3f}"),
            format_energy(per_point) if per_point is not None else "-",
            "●" if m.pareto else "",
            vs or "(best)",
        )
    console.print(table)
    sources = Provenance.combine(m.runs.energy_source for m in study.models)
    console.print(
        f"  medians ± half the interquartile range over {study.method['repeats']} repeats; "
        f"energy {sources}; * significant, ? test cannot decide",
        highlight=False,
        markup=False,
    )
    console.print(f"  Pareto front: {', '.join(study.pareto_front)}", highlight=False, markup=False)
    console.print(f"  [bold]headline[/]: {escape(study.saving.describe())}", highlight=False)
    _footer(study.notes, study.study_id, study.stored)


def _render_layers(study: LayerStudy) -> None:
    table = _table("layer", "type", "params", "FLOPs", "fwd ms", "bwd ms", "time", "energy*")
    for row in study.layers:
        table.add_row(
            escape(row.name),
            escape(row.type),
            _num(row.params) if row.params else "",
            _num(row.flops) if row.flops else "",
            f"{row.forward_s * 1e3:.3f}",
            f"{row.backward_s * 1e3:.3f}",
            f"{row.time_share:.1%}",
            format_energy(row.energy_per_step_j),
        )
    console.print(table)
    by_type = ", ".join(f"{k} {v:.1%}" for k, v in study.by_type.items())
    console.print(f"  energy by type: {by_type}", highlight=False, markup=False)
    console.print(
        "  * attributed: measured energy per step × the layer's share of profiled step time",
        highlight=False,
    )
    console.print(
        f"  measured: {_spread(study.energy_per_step_j, format_energy)} per "
        f"step over {study.steps_per_window}-step windows × {study.energy_per_step_j.n} — "
        f"{study.energy_source}; profiler overhead {study.profiler_overhead_frac:+.0%}",
        highlight=False,
        markup=False,
    )
    if study.variants:
        vt = _table("variant", "change", "params", "energy", "val acc", "Δ energy", "Δ acc")
        for v in study.variants:
            vs = v.versus
            vt.add_row(
                escape(v.model),
                escape(v.change),
                _num(v.params),
                _spread(v.runs.energy_j, format_energy),
                _spread(v.runs.val_accuracy, lambda x: f"{x:.3f}"),
                f"{vs.energy_change_frac:+.0%} {_p(vs.energy_test)}" if vs else "(base)",
                f"{vs.accuracy_change_pp:+.1f} pp {_p(vs.accuracy_test)}" if vs else "",
            )
        console.print(vt)
    _footer(study.notes, study.study_id, study.stored)


def _render_environments(study: EnvironmentStudy) -> None:
    table = _table("environment", "energy", "time", "val acc", "vs baseline", "GPU")
    for r in study.results:
        vs = r.versus
        gpu = ""
        if r.gpu is not None and r.gpu_fit is not None:
            gpu = f"{r.gpu.utilisation_frac:.0%} busy" + (
                ", oversized" if r.gpu_fit.oversized else ""
            )
        table.add_row(
            escape(r.setting.label),
            _spread(r.runs.energy_j, format_energy),
            _spread(r.runs.duration_s, lambda v: f"{v:.2f} s"),
            _spread(r.runs.val_accuracy, lambda v: f"{v:.3f}"),
            f"{vs.energy_change_frac:+.0%} {_p(vs.energy_test)}" if vs else "(baseline)",
            gpu,
        )
    console.print(table)
    console.print(
        f"  [bold]recommendation[/]: {escape(study.recommendation.describe())}", highlight=False
    )
    _footer(study.notes, study.study_id, study.stored)


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
    json_out: JsonOut = False,
) -> None:
    """Train each model under the same budget and stop rules, repeated, and compare them.

    Energy, time, accuracy, the Pareto front, and the energy the cheapest model within
    --within-pp of the best accuracy saves against the most accurate one."""

    def work() -> None:
        from wattwise.studies import study_architectures
        from wattwise.train import parse_stop
        from wattwise.workloads import load_dataset

        method = _method(repeats, warmup_batches, cooldown, test, alpha, scope, seed)
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
                store=store,
                meters=_meters(),
                progress=progress,
            )
        if json_out:
            print_json(study.to_dict())
        else:
            _render_architectures(study)

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
    json_out: JsonOut = False,
) -> None:
    """Per-layer FLOPs, parameters, time share and attributed energy of training steps.

    Forward+backward time is profiled per layer; the measured energy of training steps is
    attributed by time share, and grouped by layer type."""

    def work() -> None:
        from wattwise.studies import study_layers
        from wattwise.train import parse_stop
        from wattwise.workloads import load_dataset

        method = _method(repeats, warmup_batches, cooldown, test, alpha, scope, seed)
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
                store=store,
                meters=_meters(),
                progress=progress,
            )
        if json_out:
            print_json(study.to_dict())
        else:
            _render_layers(study)

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

        method = _method(repeats, warmup_batches, cooldown, test, alpha, scope, seed)
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
                store=store,
                meters=_meters(),
                progress=progress,
            )
        if json_out:
            print_json(study.to_dict())
        else:
            _render_environments(study)

    _guard(work)
