"""``wattwise infer batching | quantize``: inference energy per request and per precision."""

from __future__ import annotations

import math
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
from wattwise.protocol import LeverContext

__all__ = ["infer_app"]

infer_app = typer.Typer(
    help="Inference energy: batching under a request queue, int8 quantization.",
    no_args_is_help=True,
)


def _set_threads(threads: int | None) -> None:
    import torch

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def _need_torch() -> None:
    need("wattwise infer", "torch", ["torch", "torchvision", "sklearn"])


def _parse_waits(spec: str) -> list[float | None]:
    waits: list[float | None] = []
    for raw in spec.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item in ("none", "inf"):
            waits.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(
                f"bad --max-wait-ms {raw.strip()!r}: give ms, e.g. 50 or 10,50"
            ) from None
        if value < 0:
            raise ConfigError(f"--max-wait-ms must be >= 0, got {value}")
        waits.append(value / 1e3)
    if not waits:
        raise ConfigError("give at least one --max-wait-ms")
    return waits


def _times(ratio: float) -> str:
    """``2.10x less`` / ``3.40x more`` / ``same energy``: fp32's J/inference over a variant's."""
    return ratio_phrase(1.0, ratio)  # the variant's energy over fp32's is 1 / ratio


def _input_shape(model: str, input_size: int) -> tuple[tuple[int, ...], int]:
    from wattwise.workloads import BUILTIN_MODELS
    from wattwise.workloads._spec import split_spec

    name, _ = split_spec(model)
    if name in BUILTIN_MODELS:
        return (1, 8, 8), 10  # the digits shape the built-in models are made for
    return (3, input_size, input_size), 1000


@infer_app.command("batching")
def batching(
    model: Annotated[
        str, typer.Option(help="mlp, cnn or a torchvision model (mobilenet_v3_small...).")
    ],
    rate: Annotated[float, typer.Option(help="Mean arrival rate, requests/s.")] = 16.0,
    jitter: Annotated[
        float, typer.Option(help="Relative jitter of the gaps between arrivals (0..1).")
    ] = 0.2,
    arrival: Annotated[str, typer.Option(help="jitter or poisson arrivals.")] = "jitter",
    requests: Annotated[int, typer.Option(help="Requests served by each policy.")] = 160,
    batch_sizes: Annotated[
        str, typer.Option(help="Policies: batch sizes and 'greedy', comma-separated.")
    ] = "1,4,16,64,greedy",
    max_wait_ms: Annotated[
        str,
        typer.Option(
            help="Longest wait for a batch to fill, ms ('none': until full); a comma list "
            "tries each."
        ),
    ] = "50",
    greedy_max: Annotated[int, typer.Option(help="Largest batch a greedy policy serves.")] = 64,
    slo_ms: Annotated[float | None, typer.Option(help="p95 latency SLO for the tuner, ms.")] = None,
    clock: Annotated[
        str,
        typer.Option(
            help="real: wall-clock, the server idles between arrivals (idle power counted); "
            "virtual: simulated time with measured service times (serving energy only)."
        ),
    ] = "real",
    idle_power_w: Annotated[
        float | None,
        typer.Option(help="With --clock virtual: idle power to charge for idle time, W."),
    ] = None,
    input_size: Annotated[
        int, typer.Option(help="Image side for torchvision models, pixels.")
    ] = 224,
    threads: Annotated[int | None, typer.Option(help="PyTorch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of arrivals, weights and inputs.")] = 0,
    scope: Annotated[str, typer.Option(help="machine or process.")] = "machine",
    meters: MetersOpt = "auto",
    name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Energy per request against batch size under a simulated request queue.

    The best policy is the one with the lowest J/request that meets the latency SLO.

    Every policy serves the same arrivals with real inference (random weights: energy does
    not depend on their values), each in its own window of one run.
    """
    _need_torch()
    try:
        data = _batching(
            lever_context(meters, store, scope),
            model=model, rate=rate, jitter=jitter, arrival=arrival, requests=requests,
            batch_sizes=batch_sizes, max_wait_ms=max_wait_ms, greedy_max=greedy_max,
            slo_ms=slo_ms, clock=clock, idle_power_w=idle_power_w, input_size=input_size,
            threads=threads, device=device, seed=seed, name=name, quiet=json_out,
        )  # fmt: skip
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
    else:
        _render_batching(data)


def _batching(
    context: LeverContext,
    *,
    model: str,
    rate: float,
    jitter: float,
    arrival: str,
    requests: int,
    batch_sizes: str,
    max_wait_ms: str,
    greedy_max: int,
    slo_ms: float | None,
    clock: str,
    idle_power_w: float | None,
    input_size: int,
    threads: int | None,
    device: str,
    seed: int,
    name: str | None,
    quiet: bool,
) -> dict[str, Any]:
    import torch

    from wattwise.infer import RequestStream, measure_batching, parse_policies, record_study
    from wattwise.train import resolve_device
    from wattwise.workloads import build_model

    _set_threads(threads)
    if not (rate > 0 and math.isfinite(rate)):  # said before any model is built
        raise ConfigError(f"--rate must be a positive number of requests/s, got {rate:g}")
    policies = parse_policies(
        batch_sizes, max_wait_s=_parse_waits(max_wait_ms), greedy_max=greedy_max
    )
    stream = RequestStream(rate, requests, arrival=arrival, jitter=jitter, seed=seed)
    dev = resolve_device(device)
    shape, classes = _input_shape(model, input_size)
    torch.manual_seed(seed)
    net = build_model(model, input_shape=shape, num_classes=classes)
    tracker = context.tracker(name or f"infer batching {model}")
    if not quiet:
        err_console.print(
            f"serving [bold]{escape(model)}[/] on {dev}: {len(policies)} policies x {requests} "
            f"requests at {rate:g} req/s ({clock} clock"
            + (f", about {len(policies) * requests / rate:.0f} s" if clock == "real" else "")
            + ")",
            highlight=False,
        )
    result = measure_batching(
        net,
        input_shape=shape,
        policies=policies,
        stream=stream,
        slo_s=slo_ms / 1e3 if slo_ms is not None else None,
        clock=clock,
        idle_power_w=idle_power_w,
        device=dev,
        model_name=model,
        tracker=tracker,
    )
    data = result.to_dict()
    data["threads"] = torch.get_num_threads()
    keys = ("model", "clock", "arrival", "rate_rps", "jitter", "requests", "seed", "slo_ms")
    data["study_id"] = record_study(
        tracker.run_id,
        kind="batching",
        name=name or f"batching {model}",
        params={**{k: data[k] for k in keys}, "threads": data["threads"]},
        results=data,
        label=f"batching {model}",
        context=context,
    )
    return data


def _render_batching(data: dict[str, Any]) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("policy", "J/request", "p50", "p95", "p99", "req/s", "mean batch", "power", "busy"):
        table.add_column(col, justify="right")
    for p in data["policies"]:
        mark = " *" if p["policy"] == data["best"] else ""
        table.add_row(
            escape(p["policy"] + mark),
            format_energy(p["energy_per_item_j"]),
            f"{p['p50_ms']:.1f} ms",
            f"{p['p95_ms']:.1f} ms",
            f"{p['p99_ms']:.1f} ms",
            f"{p['throughput_rps']:.2f}",
            f"{p['mean_batch_size']:.2f}",
            f"{p['mean_power_w']:.2f} W",
            f"{p['busy_share']:.0%}",
        )
    console.print(table)
    lines = [f"energy    {data['source']}, {data['scope']} scope"]
    if data["best"] is not None:
        lines.append(f"best      {data['best']} (*): {data['best_reason']}")
        if data["ratio_to_batch1"] is not None:
            lines.append(
                f"vs batch=1 {data['ratio_to_batch1']:.2f}x the J/request (same run, same arrivals)"
            )
    else:
        lines.append(f"best      none: {data['best_reason']}")
    lines += [f"note      {n}" for n in data["notes"]]
    lines.append(f"run       {data['run_id'][:12]}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


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
