"""Plots of the model-zoo trend (matplotlib, Agg backend: files only, no display)."""

from __future__ import annotations

from pathlib import Path

from wattwise._errors import ConfigError
from wattwise.infer._records import ZooResult

__all__ = ["plot_zoo"]


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
