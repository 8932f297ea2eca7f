"""``wattwise infer batching | quantize``: inference energy per request and per precision
(the batching command is in :mod:`wattwise.cli._infer_batching`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise._units import format_energy, ratio_phrase
from wattwise.cli._common import (
    MetersOpt,
    console,
    err_console,
    fail,
    lever_context,
    need,
    print_json,
)
from wattwise.cli._infer_batching import batching
from wattwise.cli._infer_batching import need_torch as _need_torch
from wattwise.cli._infer_batching import set_threads as _set_threads
from wattwise.protocol import LeverContext

__all__ = ["infer_app"]

infer_app = typer.Typer(
    help="Inference energy: batching under a request queue, int8 quantization.",
    no_args_is_help=True,
)
infer_app.command("batching")(batching)


def _times(ratio: float) -> str:
    """``2.10x less`` / ``3.40x more`` / ``same energy``: fp32's J/inference over a variant's."""
    return ratio_phrase(1.0, ratio)  # the variant's energy over fp32's is 1 / ratio


@infer_app.command("quantize")
def quantize(
    model: Annotated[
        str | None, typer.Option(help="mlp, cnn or a torchvision model; trained first.")
    ] = None,
    dataset: Annotated[
        str,
        typer.Option(
            help="digits, mnist1d[:OPTIONS], synthetic[:OPTIONS], cifar10:PATH, imagefolder:PATH."
        ),
    ] = "digits",
    init: Annotated[
        Path | None, typer.Option(help="Quantize this checkpoint instead of training.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs before quantizing.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 64,
    variants: Annotated[
        str | None,
        typer.Option(help="int8 variants: int8-dynamic,int8-static (default: those that fit)."),
    ] = None,
    calibration: Annotated[
        int, typer.Option(help="Training inputs used to calibrate static quantization.")
    ] = 256,
    rounds: Annotated[int, typer.Option(help="Interleaved measuring rounds.")] = 3,
    min_time_s: Annotated[
        float, typer.Option(help="Shortest window per variant and round, s.")
    ] = 1.0,
    max_accuracy_drop_pp: Annotated[
        float, typer.Option(help="Largest accuracy loss the pick may have, percentage points.")
    ] = 1.0,
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for training.")] = 0,
    scope: Annotated[str, typer.Option(help="machine or process.")] = "machine",
    meters: MetersOpt = "auto",
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """fp32 against int8: energy per inference, latency, size and accuracy, on the CPU.

    int8 is torchao PT2E quantization (dynamic for Linear layers, static with calibration);
    accuracy is measured on the validation set."""
    _need_torch()
    need("wattwise infer quantize", "torch", ["torchao"])
    try:
        data = _quantize(
            lever_context(meters, store, scope),
            model=model, dataset=dataset, init=init, epochs=epochs, batch_size=batch_size,
            variants=variants, calibration=calibration, rounds=rounds, min_time_s=min_time_s,
            max_accuracy_drop_pp=max_accuracy_drop_pp, threads=threads, seed=seed,
            name=name, quiet=json_out,
        )  # fmt: skip
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
        return
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("variant", "J/inference", "vs fp32", "latency", "size", "accuracy", "kernels"):
        table.add_column(col, justify="right", no_wrap=col != "kernels")
    for v in data["variants"]:
        mark = " *" if v["variant"] == data["best"] else ""
        table.add_row(
            escape(v["variant"] + mark),
            format_energy(v["energy_per_item_j"]),
            _times(v["energy_ratio_vs_fp32"]),
            f"{v['latency_ms']:.3f} ms",
            f"{v['size_bytes'] / 1024:.1f} KiB",
            f"{v['accuracy']:.4f}",
            escape(v["kernels"].split(" (")[0]),
        )
    console.print(table)
    lines = [
        f"energy    {data['source']}; batch {data['batch_size']}, {data['threads']} thread(s)",
        f"best      {data['best']} (*): lowest J/inference within "
        f"{data['max_accuracy_drop_pp']:g} pp of fp32's accuracy",
    ]
    lines += _saving_lines(data)
    if data.get("training"):
        t = data["training"]
        lines.append(
            f"trained   {t['epochs']} epochs, val acc {t['val_accuracy']:.4f} (not in the figures)"
        )
    for v in data["variants"]:
        lines += [f"note      {v['variant']}: {n}" for n in v["notes"]]
        if v["variant"] != "fp32":
            lines.append(f"method    {v['variant']}: {v['method']}")
    lines += [f"skipped   {k}: {r}" for k, r in data["skipped"].items()]
    lines += [f"note      {n}" for n in data["notes"]]
    lines.append(f"run       {data['run_id'][:12]}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


def _saving_lines(data: dict[str, Any]) -> list[str]:
    """Each int8 variant's saving against fp32, with its spread over the rounds."""
    fp32 = data["variants"][0]["rounds_energy_per_item_j"]
    lines = []
    for v in data["variants"][1:]:
        rounds = v["rounds_energy_per_item_j"]
        ratios = [f / q for f, q in zip(fp32, rounds, strict=True) if q > 0]
        spread = f" (rounds {min(ratios):.2f}-{max(ratios):.2f}x)" if ratios else ""
        phrase = _times(v["energy_ratio_vs_fp32"])
        phrase += "" if "energy" in phrase else " energy"
        lines.append(
            f"saving    {v['variant']}: {phrase} per inference{spread}, accuracy "
            f"{0.0 - v['accuracy_drop_pp']:+.2f} pp"
        )
    return lines


def _quantize(
    context: LeverContext,
    *,
    model: str | None,
    dataset: str,
    init: Path | None,
    epochs: int,
    batch_size: int,
    variants: str | None,
    calibration: int,
    rounds: int,
    min_time_s: float,
    max_accuracy_drop_pp: float,
    threads: int | None,
    seed: int,
    name: str | None,
    quiet: bool,
) -> dict[str, Any]:
    import torch

    from wattwise import train as tr
    from wattwise.infer import QUANTIZE_PROTOCOL, measure_quantization, record_study
    from wattwise.workloads import build_model, load_dataset

    _set_threads(threads)
    if model is None and init is None:
        raise ConfigError("give --model NAME (trained first) or --init CKPT")
    if calibration < 1:
        raise ConfigError(f"--calibration must be >= 1, got {calibration}")
    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {rounds}")
    protocol = replace(QUANTIZE_PROTOCOL, repeats=rounds, min_time_s=min_time_s)
    wanted = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    data = load_dataset(dataset)
    ckpt = tr.load_checkpoint(init) if init is not None else None
    if ckpt is not None:
        net = tr.model_from_checkpoint(
            ckpt, class_names=data.class_names, input_shape=data.input_shape
        )
        spec = ckpt.model_spec
    else:
        assert model is not None
        spec = model
        tr.seed_everything(seed)
        net = build_model(spec, input_shape=data.input_shape, num_classes=data.num_classes)
    val = data.val
    xs = torch.stack([val[i][0] for i in range(len(val))])  # type: ignore[arg-type]
    ys = torch.tensor([int(val[i][1]) for i in range(len(val))])  # type: ignore[arg-type]
    train_set = data.train
    n_cal = min(calibration, len(train_set))  # type: ignore[arg-type]
    cal = torch.stack([train_set[i][0] for i in range(n_cal)])
    tracker = context.tracker(name or f"infer quantize {spec}")
    training = None
    with tracker:
        if ckpt is None:
            if not quiet:
                err_console.print(
                    f"training [bold]{escape(spec)}[/] on {escape(data.name)} for {epochs} epochs"
                )
            fit = tr.fit(
                net, data, epochs=epochs, seed=seed, tracker=tracker, name="train", device="cpu"
            )
            training = {
                "epochs": len(fit.epochs),
                "val_accuracy": fit.final_val_accuracy,
                "energy_j": fit.total_energy_j,
            }
        if not quiet:
            err_console.print("quantizing and measuring fp32 and int8, interleaved")
        result = measure_quantization(
            net,
            val=(xs, ys),
            calibration=cal,
            batch_size=batch_size,
            variants=wanted,
            protocol=protocol,
            max_accuracy_drop=max_accuracy_drop_pp / 100.0,
            model_name=spec,
            dataset=data.name,
            tracker=tracker,
        )
    out = result.to_dict()
    out["threads"] = torch.get_num_threads()
    out["training"] = training
    out["study_id"] = record_study(
        tracker.run_id,
        kind="quantization",
        name=name or f"quantization {spec}",
        params={
            "model": spec,
            "dataset": data.name,
            "batch_size": batch_size,
            "rounds": rounds,
            "threads": out["threads"],
        },
        results=out,
        label=f"quantization {spec}",
        context=context,
    )
    return out
