"""``wattwise study snn``: spiking networks at a few time steps against the ANN of the same
shape: operation-count energy (an estimate of dedicated hardware) beside the tracker's
energy for running them here, and the firing rate where they cross."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from wattwise._errors import ConfigError
from wattwise.cli._common import console, need
from wattwise.cli._render import format_energy
from wattwise.cli._study import _ints, study_app
from wattwise.cli._study_options import (
    BatchSize,
    Dataset,
    Device,
    Epochs,
    Lr,
    Repeats,
    StudyOptions,
    Threads,
    study_options,
)
from wattwise.cli._study_render import _footer, _table

if TYPE_CHECKING:
    from wattwise.studies import SnnStudy

__all__ = ["render_snn", "snn"]


@study_app.command("snn")
@study_options(significance=False)
def snn(
    options: StudyOptions,
    dataset: Dataset = "mnist1d",
    steps: Annotated[
        str, typer.Option(help="Time steps T of the SNNs, comma-separated.")
    ] = "2,4,8",
    family: Annotated[str, typer.Option(help="mlp, or cnn1d for sequences.")] = "mlp",
    width: Annotated[int, typer.Option(help="Hidden units (mlp) or channels (cnn1d).")] = 256,
    depth: Annotated[int, typer.Option(help="Hidden layers (mlp) or conv blocks (cnn1d).")] = 1,
    coding: Annotated[str, typer.Option(help="rate (Bernoulli spikes) or direct (analog).")] = (
        "rate"
    ),
    readout: Annotated[str, typer.Option(help="membrane or count.")] = "membrane",
    beta: Annotated[float, typer.Option(help="Membrane decay per step.")] = 0.9,
    epochs: Epochs = 10,
    repeats: Repeats = 3,
    batch_size: BatchSize = 64,
    lr: Lr = 1e-3,
    device: Device = "cpu",
    threads: Threads = None,
    memory: Annotated[
        bool, typer.Option(help="Count SRAM weight and membrane traffic in the op counts.")
    ] = True,
) -> None:
    """Train an ANN and spiking networks (snntorch, LIF neurons) of the same shape for each T.

    Accuracy, firing rate per layer, operation-count energy per inference (estimated,
    Horowitz ISSCC 2014, 45 nm: dedicated hardware, not this machine) beside the tracker's
    energy per inference running each in PyTorch here, and the crossover firing rate."""
    need("wattwise study snn", "snn", ["snntorch"])
    from wattwise.studies import study_snn
    from wattwise.workloads import load_dataset

    ts = [t for t in _ints(steps, "time steps") if t is not None]
    if not ts:
        raise ConfigError("--steps needs at least one T, e.g. 2,4,8")
    method = options.method(repeats)
    context = options.context()
    data = load_dataset(dataset)
    with options.progress() as progress:
        study = study_snn(
            data,
            steps=ts,
            family=family.lower(),
            width=width,
            depth=depth,
            coding=coding.lower(),
            readout=readout.lower(),
            beta=beta,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            threads=threads,
            memory=memory,
            method=method,
            name=options.name,
            context=context.with_(progress=progress),
        )
    options.show(study, render_snn)


def render_snn(study: SnnStudy) -> None:
    """The study's tables: networks, firing rates, crossovers; both energies labelled."""
    table = _table(
        "network", "val acc", "input rate", "op fp32", "op int8", "tracker / inference", "train"
    )
    for v in study.variants:
        table.add_row(
            escape(v.label),
            f"{v.runs.val_accuracy.median:.3f}",
            f"{v.ops.input_rate:.3f}" if v.spiking else "-",
            f"{v.op_pj('fp32') / 1e6:.3g} µJ",
            f"{v.op_pj('int8') / 1e6:.3g} µJ",
            format_energy(v.inference.energy_per_item_j.median),
            format_energy(v.runs.energy_j.median),
        )
    console.print(table)
    sources = {v.inference.total.source for v in study.variants}
    console.print(
        f"  op columns: {study.op_source}; {study.memory_model}", highlight=False, markup=False
    )
    console.print(
        f"  tracker columns: {'; '.join(sorted(sources))} (running in PyTorch here)",
        highlight=False,
        markup=False,
    )
    for v in study.variants:
        if v.spiking:
            rates = ", ".join(f"{n.name} {n.firing_rate:.3f}" for n in v.ops.neurons)
            console.print(f"  firing rates {v.label}: {rates}", highlight=False, markup=False)
    cross = _table("T", "SNN", "against", "SNN pJ", "ANN pJ", "rate", "crossover rate")
    for c in study.crossovers:
        rate = "-" if c.crossover_rate is None else f"{c.crossover_rate:.3f}"
        cross.add_row(
            str(c.steps),
            c.snn_precision,
            c.against,
            f"{c.snn_pj:.4g}",
            f"{c.ann_pj:.4g}",
            f"{c.input_rate:.3f}",
            rate,
        )
    console.print(cross)
    console.print(f"  caution: {study.caution}", highlight=False, markup=False, style="dim")
    _footer(study.notes, study.study_id, study.stored)
