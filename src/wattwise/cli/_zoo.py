"""``wattwise zoo``: energy per image of torchvision's classifiers by year and accuracy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

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

__all__ = ["zoo"]


def _model_list(models: list[str] | None) -> list[str]:
    from wattwise.infer import DEFAULT_ZOO, zoo_models

    if not models:
        return list(DEFAULT_ZOO)
    names = [n.strip() for item in models for n in item.split(",") if n.strip()]
    if names == ["all"]:
        return zoo_models()
    if "all" in names:
        raise ConfigError("'all' stands alone: --models all")
    return names


def zoo(
    models: Annotated[
        list[str] | None,
        typer.Option(
            help="torchvision models, comma-separated or repeated; 'all' for every model "
            "with a known year (slow); default: 16 models, 2012-2022."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 1,
    min_time_s: Annotated[float, typer.Option(help="Shortest window per model, s.")] = 1.0,
    out: Annotated[
        Path | None, typer.Option(help="Write energy_vs_year.png and energy_vs_accuracy.png here.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    scope: Annotated[str, typer.Option(help="machine or process.")] = "machine",
    meters: MetersOpt = "auto",
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Energy per image and latency of torchvision classifiers from 2012 to 2022.

    Models run on random weights (energy does not depend on their values); year, ImageNet
    top-1, GFLOPs and parameters come from torchvision's weight metadata (no download).
    """
    need("wattwise zoo", "torch", ["torch", "torchvision"])
    import torch

    try:
        from wattwise.infer import ZOO_PROTOCOL, measure_zoo, record_study
        from wattwise.train import resolve_device

        def progress(i: int, total: int, model: str) -> None:
            if not json_out:
                err_console.print(f"[{i + 1}/{total}] {model}", highlight=False, markup=False)

        context = lever_context(meters, store, scope, progress)
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        names = _model_list(models)
        dev = resolve_device(device)
        tracker = context.tracker(name or "zoo")
        result = measure_zoo(
            names,
            batch_size=batch_size,
            protocol=replace(ZOO_PROTOCOL, min_time_s=min_time_s),
            device=dev,
            out_dir=str(out) if out is not None else None,
            tracker=tracker,
            context=context,
        )
        data: dict[str, Any] = result.to_dict()
        data["threads"] = torch.get_num_threads()
        data["device"] = str(dev)
        data["study_id"] = record_study(
            tracker.run_id,
            kind="zoo",
            name=name or "zoo",
            params={
                "models": names,
                "batch_size": batch_size,
                "threads": data["threads"],
                "device": str(dev),
            },
            results=data,
            label="zoo",
            context=context,
        )
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("model", "year", "top-1", "GFLOPs", "params", "J/image", "latency", "front"):
        table.add_column(col, justify="right")
    for e in data["entries"]:
        table.add_row(
            escape(e["model"]),
            str(e["year"]),
            f"{e['top1']:.1f} %",
            f"{e['gflops']:.2f}",
            f"{e['params'] / 1e6:.1f} M",
            format_energy(e["energy_per_item_j"]),
            f"{e['latency_ms']:.1f} ms",
            "*" if e["on_pareto_front"] else "",
        )
    console.print(table)
    lines = [f"energy    {data['source']}; batch {data['batch_size']}, {data['threads']} thread(s)"]
    if data["trend_per_year"] is not None:
        lines.append(f"trend     {data['trend_per_year']:+.0%} J/image per year (log-linear fit)")
    lines += [f"shuffle   {s['summary']}" for s in data["shufflenet"].values()]
    lines += [f"plot      {p}" for p in data["plots"]] or ["plot      none written: give --out DIR"]
    lines += [f"note      {n}" for n in data["notes"]]
    lines.append(f"run       {data['run_id'][:12]}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)
