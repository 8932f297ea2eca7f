"""``wattwise ofa train | select``: one once-for-all network, a sub-network per budget.

``train`` builds an elastic network for a dataset and trains it by progressive shrinking
(every phase a tracker window), then saves it; ``select`` loads it and, for each
``--budget``, picks the most accurate sub-network whose energy per inference (or latency)
fits, as measured, with no retraining (Cai et al., "Once-for-All", ICLR 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise._units import format_energy
from wattwise.cli._common import (
    MetersOpt,
    console,
    err_console,
    fail,
    lever_context,
    need,
    print_json,
)
from wattwise.cli._progress import progress_bar

if TYPE_CHECKING:
    from wattwise.ofa import Selection

__all__ = ["ofa_app"]

ofa_app = typer.Typer(
    help="Once-for-all: train one elastic network, deploy a sub-network per energy budget.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
]
ScopeOpt = Annotated[str, typer.Option(help="machine or process.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _ints(text: str, what: str) -> tuple[int, ...]:
    """``2,3`` -> (2, 3); empty text -> ()."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(
            f"{what} must be whole numbers separated by commas, got {text!r}"
        ) from None


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{what} must be numbers separated by commas, got {text!r}") from None


@ofa_app.command("select")
def select_command(
    path: Annotated[Path, typer.Argument(help="The elastic network (`wattwise ofa train --out`).")],
    budget: Annotated[
        list[str],
        typer.Option(
            help="A budget, repeatable: energy per inference (50uJ, 0.2mJ, 1e-4J) or "
            "latency of one forward pass (2ms, 500us)."
        ),
    ],
    dataset: Annotated[
        str, typer.Option(help="The dataset it was trained for (its validation split).")
    ] = "digits",
    batch_size: Annotated[int, typer.Option(help="Inputs per measured forward pass.")] = 1,
    search: Annotated[
        str, typer.Option(help="auto (exhaustive when the space is small), exhaustive, evolution.")
    ] = "auto",
    population: Annotated[int, typer.Option(help="Candidates per generation.")] = 16,
    generations: Annotated[int, typer.Option(help="Generations per budget.")] = 6,
    max_measured: Annotated[
        int, typer.Option(help="Most candidates measured (cached ones are free).")
    ] = 64,
    repeats: Annotated[int, typer.Option(help="Measured repeats per candidate.")] = 3,
    min_time_s: Annotated[
        float, typer.Option(help="Shortest measured window per repeat, s.")
    ] = 0.2,
    confirm: Annotated[
        int,
        typer.Option(
            help="Measure each choice again; try up to this many candidates per budget "
            "(0: no confirmation)."
        ),
    ] = 3,
    energy: Annotated[
        str,
        typer.Option(
            help="predicted: fit an energy predictor to a measured calibration set, search by "
            "it, measure only the choices; measured: measure every candidate met."
        ),
    ] = "predicted",
    calibration: Annotated[
        int, typer.Option(help="Sub-networks measured to fit the predictor (predicted).")
    ] = 12,
    predict_margin: Annotated[
        float,
        typer.Option(help="Predicted to fit: prediction + this many sigma within the budget."),
    ] = 1.0,
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Write each chosen sub-network here as a plain PyTorch program (.pt2)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the evolution.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads.")] = None,
    scope: ScopeOpt = "machine",
    meters: MetersOpt = "auto",
    name: Annotated[str | None, typer.Option(help="Name of the study.")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """For each --budget, the most accurate sub-network that fits it, measured.

    Energy per inference is measured under the measurement protocol (each candidate's
    repeats are tracker windows): with --energy predicted (the default) for a calibration
    set and each budget's choice, the search ranking by a predictor fitted to the
    calibration; with --energy measured for every candidate. Candidates measured before
    under the same conditions are read back from the store. A budget no sub-network fits
    is said on one line (exit 2)."""
    need("wattwise ofa select", "torch", ["torch", "sklearn"])
    try:
        result = _select(
            path, budget, dataset=dataset, batch_size=batch_size, search=search,
            population=population, generations=generations, max_measured=max_measured,
            repeats=repeats, min_time_s=min_time_s, confirm=confirm, export_dir=export_dir,
            seed=seed, device=device, threads=threads, scope=scope, meters=meters, name=name,
            store=store, quiet=json_out,
            predictor={"energy": energy, "calibration": calibration,
                       "predict_margin": predict_margin},
        )  # fmt: skip
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result)
    unmet = [c for c in result.choices if not c.meets_budget]
    if unmet:
        text = "; ".join(f"{c.budget.text}: {c.note}" for c in unmet)
        nothing = ", so nothing was exported" if export_dir is not None else ""
        fail(f"no sub-network fits {text} (give a larger budget{nothing})")


def _select(
    path: Path,
    budgets: list[str],
    *,
    dataset: str,
    batch_size: int,
    search: str,
    population: int,
    generations: int,
    max_measured: int,
    repeats: int,
    min_time_s: float,
    confirm: int,
    export_dir: Path | None,
    seed: int,
    device: str,
    threads: int | None,
    scope: str,
    meters: str,
    name: str | None,
    store: str | None,
    quiet: bool,
    predictor: dict[str, Any],
) -> Selection:
    import torch

    from wattwise import ofa
    from wattwise.protocol import Protocol
    from wattwise.workloads import load_dataset

    wanted = [ofa.parse_budget(b) for b in budgets]  # a bad budget fails before any work
    if predictor["energy"] not in ofa.ENERGY_MODES:
        raise ConfigError(
            f"--energy must be {' or '.join(ofa.ENERGY_MODES)}, got {predictor['energy']!r}"
        )
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    if export_dir is not None and export_dir.exists() and not export_dir.is_dir():
        raise ConfigError(f"--export-dir {export_dir} is a file, not a folder")
    protocol = ofa.SELECT_PROTOCOL
    protocol = Protocol(
        repeats=repeats, warmup=protocol.warmup, min_time_s=min_time_s,
        min_calls=protocol.min_calls,
    )  # fmt: skip
    context = lever_context(meters, store, scope)
    net = ofa.load_elastic(path)
    data = load_dataset(dataset)
    if tuple(data.input_shape) != tuple(net.arch.input_shape) or (
        data.num_classes != net.arch.num_classes
    ):
        raise ConfigError(
            f"{path} was built for inputs {tuple(net.arch.input_shape)} and "
            f"{net.arch.num_classes} classes, but {dataset} has {tuple(data.input_shape)} and "
            f"{data.num_classes}: give the --dataset it was trained on"
        )
    header = (
        f"selecting from {escape(str(path))}: {net.space.size()} sub-networks, "
        f"{len(wanted)} budget(s), on {escape(data.name)}"
    )
    with progress_bar("measured candidates", quiet=quiet) as progress:
        told = None if progress is None else _after_checks(header, progress)
        return ofa.select(
            net, data, wanted, context=context.with_(progress=told),
            protocol=protocol, batch_size=batch_size, search=search, population=population,
            generations=generations, max_measured=max_measured, seed=seed, device=device,
            network=str(path), meters_label=meters, export_dir=export_dir, name=name,
            confirm=confirm, **predictor,
        )  # fmt: skip


def _after_checks(
    header: str, progress: Callable[[int, int, str], None]
) -> Callable[[int, int, str], None]:
    """``progress``, saying ``header`` first: once the selection has checked its settings
    and begun, so bad input stays one error line."""
    said: list[bool] = []

    def told(done: int, planned: int, label: str) -> None:
        if not said:
            err_console.print(header, highlight=False, soft_wrap=True)
            said.append(True)
        progress(done, planned, label)

    return told


def _render(result: Selection) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    predicted = result.energy == "predicted"
    cols = ["budget", "sub-network", "accuracy", "J/inference measured", "IQR"]
    cols += ["predicted (±1σ)"] if predicted else []
    for col in (*cols, "latency", "fits"):
        table.add_column(col, justify="left" if col == "sub-network" else "right")
    for choice in result.choices:
        c = choice.chosen
        if c is None:
            table.add_row(escape(choice.budget.text), "none fits", *[""] * (len(cols) - 1), "no")
            continue
        e, p = c.energy_per_item_j, choice.prediction
        guess = [""] * predicted
        if p is not None:
            value, sd = p.predicted_energy_per_item_j, p.predicted_energy_sd_j
            guess = [f"{format_energy(value)} ± {format_energy(sd)}"]
        table.add_row(
            escape(choice.budget.text),
            escape(c.key),
            f"{c.accuracy:.4f}",
            format_energy(e.median),
            format_energy(e.iqr),
            *guess,
            f"{c.latency_ms:.3g} ms",
            "yes" if choice.meets_budget else "no",
        )
    console.print(table)
    lines = [
        f"energy    {result.source}; batch {result.batch_size}, scope {result.scope}",
        f"measured  {result.measured} candidate(s) now, {result.cached} read back from the "
        f"store, of {result.space_size} sub-networks ({result.search}, at most "
        f"{result.max_measured} measured)",
        f"took      {result.seconds:.1f} s ({result.measuring_seconds:.1f} s measuring)",
    ]
    if predicted:
        fit = result.predictors[0]
        lines.append(
            f"predictor energy per inference PREDICTED from {', '.join(fit.features)} for "
            f"{len(result.predicted)} ranked candidate(s), fitted to {len(fit.calibration)} "
            f"measured: residual spread {format_energy(fit.residual_sd)}, R² {fit.r2:.2f}; "
            f"accuracy: {result.accuracy_evaluations} validation pass(es), "
            f"{result.accuracy_seconds:.1f} s, {format_energy(result.accuracy_energy_j)}"
        )
    if result.confirmations and not predicted:
        lines.append(
            f"confirmed {result.confirmations} choice measurement(s): a budget is met only when "
            "the choice fits it on both measurements"
        )
    lines += [f"front     {len(result.pareto_front)} sub-network(s) on the Pareto front"]
    lines += [
        f"exported  {c.budget.text}: {c.export_path}" for c in result.choices if c.export_path
    ]
    lines += [f"note      {n}" for n in result.notes]
    if result.run_id is not None:
        lines.append(f"run       {result.run_id[:12]}")
    if result.study_id is not None:
        lines.append(f"study     {result.study_id[:12]} (wattwise report --study ID)")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


@ofa_app.command("train")
def train_command(
    out: Annotated[Path, typer.Option(help="Write the trained elastic network here.")],
    dataset: Annotated[
        str, typer.Option(help="digits, mnist1d[:OPTIONS], synthetic[:OPTIONS], cifar10:PATH.")
    ] = "digits",
    stages: Annotated[int, typer.Option(help="Stages of blocks.")] = 3,
    max_depth: Annotated[int, typer.Option(help="Most blocks per stage.")] = 3,
    widths: Annotated[
        str | None, typer.Option(help="Channels per stage, e.g. 16,24,32 (default).")
    ] = None,
    kernels: Annotated[str, typer.Option(help="Kernel-size choices.")] = "3,5,7",
    expands: Annotated[str, typer.Option(help="Expand-ratio choices.")] = "2,4,6",
    largest_epochs: Annotated[
        int, typer.Option(help="Epochs of the largest network (phase 1).")
    ] = 12,
    kernel_epochs: Annotated[int, typer.Option(help="Epochs of the elastic-kernel phase.")] = 3,
    depth_epochs: Annotated[
        str, typer.Option(help="Epochs of each elastic-depth stage (empty: skip).")
    ] = "2,3",
    width_epochs: Annotated[
        str, typer.Option(help="Epochs of each elastic-width stage (empty: skip).")
    ] = "2,3",
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate of phase 1.")] = 3e-3,
    seed: Annotated[int, typer.Option(help="Seed for weights and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    scope: ScopeOpt = "machine",
    meters: MetersOpt = "auto",
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train one elastic network by progressive shrinking and save it (--out).

    Phases: the largest network, then elastic kernel, depth and width, each distilled from
    the largest; each phase is a tracker window, so its energy is stored."""
    need("wattwise ofa train", "torch", ["torch", "sklearn"])
    try:
        data = _train(
            out, dataset=dataset, stages=stages, max_depth=max_depth, widths=widths,
            kernels=kernels, expands=expands, largest_epochs=largest_epochs,
            kernel_epochs=kernel_epochs, depth_epochs=depth_epochs, width_epochs=width_epochs,
            batch_size=batch_size, lr=lr, seed=seed, device=device, scope=scope,
            meters=meters, name=name, store=store, quiet=json_out,
        )  # fmt: skip
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
        return
    lines = [
        f"network   {data['sub_networks']} sub-networks (10^{data['log10_sub_networks']:.1f}) "
        f"on {data['dataset']}",
        f"energy    {format_energy(data['total_energy_j'])} ± "
        f"{format_energy(data['total_uncertainty_j'])} — {data['energy_source']}",
        f"accuracy  largest {data['largest_val_accuracy']:.4f}, smallest "
        f"{data['smallest_val_accuracy']:.4f} (validation)",
        f"took      {data['duration_s']:.1f} s",
        f"saved to  {data['out']}",
        f"run       {data['run_id'][:12]}",
    ]
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


def _train(
    out: Path,
    *,
    dataset: str,
    stages: int,
    max_depth: int,
    widths: str | None,
    kernels: str,
    expands: str,
    largest_epochs: int,
    kernel_epochs: int,
    depth_epochs: str,
    width_epochs: str,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    scope: str,
    meters: str,
    name: str | None,
    store: str | None,
    quiet: bool,
) -> dict[str, Any]:
    from wattwise import ofa
    from wattwise.train import resolve_device, seed_everything
    from wattwise.workloads import load_dataset

    if out.exists() and out.is_dir():
        raise ConfigError(f"--out {out} is a folder: give a file path")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    plan = ofa.ShrinkPlan(
        largest_epochs=largest_epochs,
        kernel_epochs=kernel_epochs,
        depth_epochs=_ints(depth_epochs, "--depth-epochs"),
        width_epochs=_ints(width_epochs, "--width-epochs"),
    )
    context = lever_context(meters, store, scope)
    resolve_device(device)  # a bad device fails before the data is loaded
    data = load_dataset(dataset)
    seed_everything(seed)
    net = ofa.elastic_network(
        data.input_shape,
        data.num_classes,
        stages=stages,
        max_depth=max_depth,
        widths=_ints(widths, "--widths") if widths else None,
        kernel_choices=_ints(kernels, "--kernels"),
        expand_choices=_floats(expands, "--expands"),
    )
    if not quiet:
        err_console.print(
            f"training an elastic network on {escape(data.name)}: {net.space.size()} "
            f"sub-networks, {plan.total_epochs} epochs in all",
            highlight=False,
            soft_wrap=True,
        )
    with progress_bar("epochs", quiet=quiet) as progress:
        result = ofa.progressive_shrink(
            net, data, plan=plan, context=context.with_(progress=progress), seed=seed,
            batch_size=batch_size, lr=lr, device=device, name=name or f"ofa train on {dataset}",
        )  # fmt: skip
    saved = ofa.save_elastic(net, out)
    return {
        "out": str(saved),
        "dataset": data.name,
        "sub_networks": net.space.size(),
        "log10_sub_networks": net.space.log10_size(),
        "space": net.space.to_dict(),
        **result.to_dict(),
    }
