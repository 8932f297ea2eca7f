"""``wattwise infer batching``: energy per request under a request queue, at one arrival
rate or swept from light load to saturation (``--rates``), net of idle."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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
from wattwise.protocol import LeverContext

__all__ = ["batching", "need_torch", "set_threads"]


def set_threads(threads: int | None) -> None:
    """Use this many PyTorch CPU threads (None: leave it)."""
    import torch

    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)


def need_torch() -> None:
    """Refuse, in one line, when the inference extras are missing."""
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


def _input_shape(model: str, input_size: int) -> tuple[tuple[int, ...], int]:
    from wattwise.workloads import BUILTIN_MODELS
    from wattwise.workloads._spec import split_spec

    name, _ = split_spec(model)
    if name in BUILTIN_MODELS:
        return (1, 8, 8), 10  # the digits shape the built-in models are made for
    return (3, input_size, input_size), 1000


def batching(
    model: Annotated[
        str, typer.Option(help="mlp, cnn or a torchvision model (mobilenet_v3_small...).")
    ],
    rate: Annotated[float, typer.Option(help="Mean arrival rate, requests/s.")] = 16.0,
    rates: Annotated[
        str | None,
        typer.Option(
            help="Sweep these arrival rates instead (req/s, comma-separated, e.g. "
            "2,8,32,128): every policy at every rate, net of idle (virtual clock by default)."
        ),
    ] = None,
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
        str | None,
        typer.Option(
            help="real: wall-clock, the server idles between arrivals (idle power counted); "
            "virtual: simulated time with measured service times (serving energy only). "
            "Default: real for one rate, virtual for --rates."
        ),
    ] = None,
    idle_power_w: Annotated[
        float | None,
        typer.Option(help="With --clock virtual: idle power to charge for idle time, W."),
    ] = None,
    idle_s: Annotated[
        float,
        typer.Option(
            help="Idle seconds measured in the same run (half before, half after the "
            "policies) for figures net of idle; 0: none."
        ),
    ] = 2.0,
    min_time_s: Annotated[
        float,
        typer.Option(help="Shortest window per policy, s (a short stream is served again)."),
    ] = 1.0,
    plot: Annotated[
        Path | None, typer.Option(help="With --rates: write batching_vs_load.png into DIR.")
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

    The best policy is the one with the lowest J/request (net of idle when idle is
    measured) that meets the latency SLO; the answer names the load it was tuned for.
    With --rates, every policy is measured at every rate, from light load to saturation.

    Every policy serves the same arrivals with real inference (random weights: energy does
    not depend on their values), each in its own window of one run.
    """
    need_torch()
    try:
        settings = _ServeSettings(
            model=model, jitter=jitter, arrival=arrival, requests=requests,
            batch_sizes=batch_sizes, max_wait_ms=max_wait_ms, greedy_max=greedy_max,
            slo_ms=slo_ms, idle_power_w=idle_power_w, idle_s=idle_s, min_time_s=min_time_s,
            input_size=input_size, threads=threads, device=device, seed=seed, name=name,
            quiet=json_out,
        )  # fmt: skip
        context = lever_context(meters, store, scope)
        if rates is not None:
            data = _batching_sweep(context, settings, rates, clock or "virtual", plot)
        else:
            if plot is not None:
                raise ConfigError("--plot draws a sweep: give --rates as well")
            data = _batching(context, settings, rate, clock or "real")
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(data)
    elif rates is not None:
        _render_sweep(data)
    else:
        _render_batching(data)


@dataclass(frozen=True)
class _ServeSettings:
    """What ``infer batching`` serves with, for one rate or a sweep."""

    model: str
    jitter: float
    arrival: str
    requests: int
    batch_sizes: str
    max_wait_ms: str
    greedy_max: int
    slo_ms: float | None
    idle_power_w: float | None
    idle_s: float
    min_time_s: float
    input_size: int
    threads: int | None
    device: str
    seed: int
    name: str | None
    quiet: bool

    @property
    def slo_s(self) -> float | None:
        return self.slo_ms / 1e3 if self.slo_ms is not None else None

    def stream(self, rate: float) -> Any:
        from wattwise.infer import RequestStream

        if not (rate > 0 and math.isfinite(rate)):  # said before any model is built
            raise ConfigError(f"--rate must be a positive number of requests/s, got {rate:g}")
        return RequestStream(
            rate, self.requests, arrival=self.arrival, jitter=self.jitter, seed=self.seed
        )


def _serving(settings: _ServeSettings) -> tuple[Any, list[Any], Any, tuple[int, ...], Any]:
    """Threads, policies, device, input shape, the model and the protocol, checked and
    built in that order (bad settings are refused before a model is built)."""
    import torch

    from wattwise.infer import BATCHING_PROTOCOL, parse_policies
    from wattwise.train import resolve_device
    from wattwise.workloads import build_model

    set_threads(settings.threads)
    policies = parse_policies(
        settings.batch_sizes,
        max_wait_s=_parse_waits(settings.max_wait_ms),
        greedy_max=settings.greedy_max,
    )
    protocol = replace(BATCHING_PROTOCOL, min_time_s=settings.min_time_s)
    dev = resolve_device(settings.device)
    shape, classes = _input_shape(settings.model, settings.input_size)
    torch.manual_seed(settings.seed)
    net = build_model(settings.model, input_shape=shape, num_classes=classes)
    return protocol, policies, dev, shape, net


def _study_params(settings: _ServeSettings, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model": settings.model,
        "arrival": settings.arrival,
        "jitter": settings.jitter,
        "requests": settings.requests,
        "seed": settings.seed,
        "slo_ms": settings.slo_ms,
        "idle_s": settings.idle_s,
        "threads": data["threads"],
        **extra,
    }


def _batching(
    context: LeverContext, settings: _ServeSettings, rate: float, clock: str
) -> dict[str, Any]:
    import torch

    from wattwise.infer import measure_batching, record_study

    stream = settings.stream(rate)
    protocol, policies, dev, shape, net = _serving(settings)
    model = settings.model
    tracker = context.tracker(settings.name or f"infer batching {model}")
    if not settings.quiet:
        n = len(policies)
        about = f", about {n * settings.requests / rate:.0f} s" if clock == "real" else ""
        err_console.print(
            f"serving [bold]{escape(model)}[/] on {dev}: {n} policies x "
            f"{settings.requests} requests at {rate:g} req/s ({clock} clock{about})",
            highlight=False,
        )
    result = measure_batching(
        net,
        input_shape=shape,
        policies=policies,
        stream=stream,
        slo_s=settings.slo_s,
        clock=clock,
        idle_power_w=settings.idle_power_w,
        device=dev,
        model_name=model,
        protocol=protocol,
        tracker=tracker,
        idle_s=settings.idle_s,
    )
    data = result.to_dict()
    data["threads"] = torch.get_num_threads()
    data["study_id"] = record_study(
        tracker.run_id,
        kind="batching",
        name=settings.name or f"batching {model}",
        params=_study_params(settings, data, clock=clock, rate_rps=rate),
        results=data,
        label=f"batching {model}",
        context=context,
    )
    return data


def _batching_sweep(
    context: LeverContext, settings: _ServeSettings, rates: str, clock: str, plot: Path | None
) -> dict[str, Any]:
    import torch

    from wattwise.infer import parse_rates, plot_batching_sweep, record_study, sweep_batching

    if settings.idle_power_w is not None:
        raise ConfigError("--idle-power-w applies to one rate; a sweep measures idle (--idle-s)")
    rates_rps = parse_rates(rates)
    for r in rates_rps:
        settings.stream(r)
    protocol, policies, dev, shape, net = _serving(settings)
    model = settings.model
    tracker = context.tracker(settings.name or f"infer batching sweep {model}")
    if not settings.quiet:
        err_console.print(
            f"serving [bold]{escape(model)}[/] on {dev}: {len(policies)} policies x "
            f"{settings.requests} requests at each of {len(rates_rps)} rates ({clock} clock)",
            highlight=False,
        )
    sweep = sweep_batching(
        net,
        input_shape=shape,
        policies=policies,
        rates_rps=rates_rps,
        stream=settings.stream,
        slo_s=settings.slo_s,
        clock=clock,
        idle_s=settings.idle_s,
        device=dev,
        model_name=model,
        protocol=protocol,
        tracker=tracker,
    )
    if plot is not None:
        written = plot_batching_sweep(sweep, plot)
        sweep = replace(sweep, plots=tuple(str(p) for p in written))
    data = sweep.to_dict()
    data["threads"] = torch.get_num_threads()
    data["study_id"] = record_study(
        tracker.run_id,
        kind="batching-sweep",
        name=settings.name or f"batching sweep {model}",
        params=_study_params(settings, data, clock=clock, rates_rps=rates_rps),
        results=data,
        label=f"batching sweep {model}",
        context=context,
    )
    return data


def _net_or_gross(p: dict[str, Any]) -> str:
    net = p.get("net_energy_per_item_j")
    return format_energy(net if net is not None else p["energy_per_item_j"])


def _render_batching(data: dict[str, Any]) -> None:
    net = data.get("measured_idle") is not None
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    cols = ["policy", "J/req"] + (["net J/req"] if net else [])
    cols += ["p50", "p95", "p99"] + ([] if net else ["req/s"]) + ["batch", "power", "busy"]
    for col in cols:
        table.add_column(col, justify="right", no_wrap=col == "policy")
    for p in data["policies"]:
        mark = " *" if p["policy"] == data["best"] else ""
        table.add_row(
            escape(p["policy"] + mark),
            format_energy(p["energy_per_item_j"]),
            *([_net_or_gross(p)] if net else []),
            f"{p['p50_ms']:.1f} ms",
            f"{p['p95_ms']:.1f} ms",
            f"{p['p99_ms']:.1f} ms",
            *([] if net else [f"{p['throughput_rps']:.2f}"]),
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
        if data.get("net_ratio_to_batch1") is not None:
            lines.append(f"net       {data['net_ratio_to_batch1']:.2f}x batch=1's, net of idle")
    else:
        lines.append(f"best      none: {data['best_reason']}")
    lines.append(f"tuned for {data['tuned_for']['text']}")
    lines += [f"note      {n}" for n in data["notes"]]
    lines.append(f"run       {data['run_id'][:12]}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _render_sweep(data: dict[str, Any]) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    # "@1": batch=1 at that rate; the other columns are the tuned policy's; J net of idle
    cols = ("rate", "busy@1", "J/req@1", "p95@1", "tuned", "J/req", "p95", "batch", "ratio")
    for col in cols:
        table.add_column(col, justify="right", no_wrap=col == "tuned")
    for row, result in zip(data["rows"], data["results"], strict=True):
        busy = row["batch1_busy_share"]
        one = row["batch1_net_energy_per_item_j"]
        best = row["best_net_energy_per_item_j"]
        table.add_row(
            f"{row['rate_rps']:g}/s",
            "–" if busy is None else f"{busy:.0%}",
            "–" if one is None else format_energy(one),
            "–" if row["batch1_p95_ms"] is None else f"{row['batch1_p95_ms']:.1f} ms",
            escape(row["best"] or "none"),
            "–" if best is None else format_energy(best),
            "–" if row["best_p95_ms"] is None else f"{row['best_p95_ms']:.1f} ms",
            "–" if row["best_mean_batch_size"] is None else f"{row['best_mean_batch_size']:.1f}",
            _ratio(row["net_ratio_to_batch1"] if result.get("measured_idle") else None),
        )
    console.print(table)
    first = data["results"][0]
    lines = [f"energy    {first['source']}, {first['scope']} scope, {data['clock']} clock"]
    slo = "none" if data["slo_s"] is None else f"p95 <= {data['slo_s'] * 1e3:g} ms"
    lines.append(f"SLO       {slo}; the tuned policy at each rate is tuned for that rate's load")
    lines.append(
        "columns   @1: batch=1 at that rate (busy: share of the time serving); J/req: net "
        "of idle; ratio: tuned J/req over batch=1's"
    )
    lines += [f"note      {n}" for n in first["notes"]]
    lines += [f"plot      {p}" for p in data["plots"]]
    lines.append(f"run       {data['run_id'][:12]}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)
