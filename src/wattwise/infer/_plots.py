"""Plots of the model-zoo trend and of batching against load (matplotlib, Agg backend:
files only, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wattwise._errors import ConfigError
from wattwise.infer._records import BatchingResult, ZooResult
from wattwise.infer._sweep_record import BatchingSweep

__all__ = ["plot_batching_sweep", "plot_zoo"]


def _pyplot(out_dir: str | Path) -> tuple[Any, Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install matplotlib") from None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out}: {exc.strerror}") from None
    return plt, out


def plot_batching_sweep(sweep: BatchingSweep, out_dir: str | Path) -> list[Path]:
    """Write ``batching_vs_load.png``: each policy's energy per request (net of idle where
    measured) and p95 latency against the arrival rate; hollow markers miss the SLO.

    Raises:
        ConfigError: matplotlib is missing, or the folder cannot be written.
    """
    plt, out = _pyplot(out_dir)
    results = sweep.results
    net = all(r.measured_idle is not None for r in results)
    labels = list(dict.fromkeys(p.policy for r in results for p in r.policies))
    fig, (ax_e, ax_l) = plt.subplots(1, 2, figsize=(12, 5))
    for label in labels:
        pts = [(r.rate_rps, r.policy(label)) for r in results if label in _labels(r)]
        x = [rate for rate, _ in pts]
        e = [p.net_energy_per_item_j if net else p.energy_per_item_j for _, p in pts]
        (line,) = ax_e.plot(x, e, "-", label=label)
        ax_l.plot(x, [p.p95_ms for _, p in pts], "-", color=line.get_color(), label=label)
        for rate, p in pts:
            y = p.net_energy_per_item_j if net else p.energy_per_item_j
            face = line.get_color() if p.meets_slo is not False else "none"
            ax_e.plot([rate], [y], "o", color=line.get_color(), markerfacecolor=face)
            ax_l.plot([rate], [p.p95_ms], "o", color=line.get_color(), markerfacecolor=face)
    for ax in (ax_e, ax_l):
        ax.set_xscale("log")
        ax.set_xlabel("arrival rate (requests/s, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    ax_e.set_ylabel("energy per request (J" + (", net of idle)" if net else ")"))
    ax_l.set_yscale("log")
    ax_l.set_ylabel("p95 latency (ms, log scale)")
    if sweep.slo_s is not None:
        ax_l.axhline(sweep.slo_s * 1e3, color="gray", linestyle="--", label="SLO")
    ax_l.legend(fontsize=7)
    source = results[0].source if results else ""
    fig.suptitle(
        f"{sweep.model}, {sweep.clock} clock: energy per request and p95 latency against load "
        f"(hollow: misses the SLO) — {source}",
        fontsize=9,
    )
    path = out / "batching_vs_load.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def _labels(result: BatchingResult) -> set[str]:
    return {p.policy for p in result.policies}


def plot_zoo(
    result: ZooResult, out_dir: str | Path, trend: tuple[float, float] | None = None
) -> list[Path]:
    """Write ``energy_vs_year.png`` and ``energy_vs_accuracy.png`` into ``out_dir``.

    Args:
        result: the measured zoo.
        out_dir: the folder (created).
        trend: ``(slope, intercept)`` of log10(J/image) on year, drawn as a line.

    Raises:
        ConfigError: matplotlib is missing, or the folder cannot be written.
    """
    plt, out = _pyplot(out_dir)
    entries = result.entries
    source = result.source
    shuffle = [e for e in entries if e.family == "shufflenet_v2"]
    others = [e for e in entries if e.family != "shufflenet_v2"]
    written = []

    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.scatter([e.year for e in others], [e.energy_per_item_j for e in others], color="tab:blue")
    ax.scatter(
        [e.year for e in shuffle],
        [e.energy_per_item_j for e in shuffle],
        color="tab:red",
        label="ShuffleNetV2",
    )
    for e in entries:
        ax.annotate(
            e.model,
            (e.year, e.energy_per_item_j),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    if trend is not None:
        years = [min(e.year for e in entries), max(e.year for e in entries)]
        ax.plot(
            years,
            [10 ** (trend[0] * y + trend[1]) for y in years],
            "--",
            color="gray",
            label=f"trend: {10 ** trend[0] - 1:+.0%} per year",
        )
    ax.set_yscale("log")
    ax.set_xlabel("year of the architecture's paper")
    ax.set_ylabel("energy per image (J, log scale)")
    ax.set_title(f"Energy per image by year, batch {result.batch_size} — {source}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path = out / "energy_vs_year.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(9, 5.5))
    ax.scatter([e.energy_per_item_j for e in others], [e.top1 for e in others], color="tab:blue")
    ax.scatter(
        [e.energy_per_item_j for e in shuffle],
        [e.top1 for e in shuffle],
        color="tab:red",
        label="ShuffleNetV2",
    )
    front = sorted((e for e in entries if e.on_pareto_front), key=lambda e: e.energy_per_item_j)
    if front:
        ax.step(
            [e.energy_per_item_j for e in front],
            [e.top1 for e in front],
            where="post",
            color="tab:green",
            label="Pareto front",
        )
    for e in entries:
        ax.annotate(
            f"{e.model} ({e.year})",
            (e.energy_per_item_j, e.top1),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xscale("log")
    ax.set_xlabel("energy per image (J, log scale)")
    ax.set_ylabel("ImageNet-1K top-1 (%, torchvision metadata)")
    ax.set_title(f"Accuracy against energy, batch {result.batch_size} — {source}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path = out / "energy_vs_accuracy.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written
