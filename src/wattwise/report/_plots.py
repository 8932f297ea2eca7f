"""Plots drawn with matplotlib, each as SVG (inline in HTML reports) and PNG (files beside
Markdown reports).

Text is drawn as paths (matplotlib's default ``svg.fonttype``), so the SVG carries no user
text that a browser would interpret, and it renders the same without fonts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure

from wattwise._records import RunResult
from wattwise._records.timeline import downsample
from wattwise.report._document import Chart

__all__ = ["TIMELINE_POINTS", "bar_chart", "line_chart", "power_timeline", "scatter_chart"]

#: Points per component a timeline plot draws at most: one per ~2 pixels of its width
#: (7.5 in at 150 dpi). A store reads a report's timeline downsampled to this in SQL
#: (``RunStore.get_run(..., timeline_points=TIMELINE_POINTS)``); a longer one is merged here.
TIMELINE_POINTS = 500

_COLOURS = ["#1b7f5b", "#c2571a", "#3a5bbf", "#9c2f8f", "#7a7a1f", "#1f8fa6", "#a63a3a"]


#: Resolution of the PNG files: sharp on a high-density screen, ~50-90 KB a chart.
PNG_DPI = 150


def _chart(fig: MplFigure) -> Chart:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=PNG_DPI, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return Chart(text[text.index("<svg") :], png.getvalue())


def _figure(width: float = 7.5, height: float = 3.2) -> tuple[MplFigure, Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.3)
    return fig, ax


def power_timeline(result: RunResult) -> Chart:
    """Power of each component over the run, with its top-level windows shaded."""
    fig, ax = _figure()
    by_comp: dict[str, list[tuple[float, float, float | None]]] = {}
    for s in downsample(result.samples, TIMELINE_POINTS):
        by_comp.setdefault(s.component, []).append((s.t_start_s, s.t_end_s, s.power_w))
    for i, comp in enumerate(result.components):
        points = sorted(by_comp.get(comp.name, []))
        xs: list[float] = []
        ys: list[float] = []
        for t0, t1, p in points:
            xs += [t0, t1]
            value = float("nan") if p is None else p  # a gap stays a hole, never a zero
            ys += [value, value]
        style = "-" if comp.counted else ":"
        label = f"{comp.name} ({comp.source.method.value})"
        ax.plot(xs, ys, style, color=_COLOURS[i % len(_COLOURS)], label=label, lw=1.4)
    for j, w in enumerate(w for w in result.windows if "/" not in w.path):
        ax.axvspan(w.start_s, w.end_s, color=_COLOURS[j % len(_COLOURS)], alpha=0.07)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("power (W)")
    ax.legend(fontsize=8, loc="upper right", frameon=False)
    return _chart(fig)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    ylabel: str,
    errors: Sequence[float] | None = None,
) -> Chart:
    """Vertical bars, one per label, with optional error bars."""
    fig, ax = _figure(width=max(5.0, 0.6 * len(labels) + 2))
    ax.bar(range(len(values)), values, yerr=errors, color=_COLOURS[0], alpha=0.85, capsize=3)
    ax.set_xticks(
        range(len(labels)),
        labels,
        rotation=30 if len(labels) > 5 else 0,
        ha="right" if len(labels) > 5 else "center",
        fontsize=8,
    )
    ax.set_ylabel(ylabel)
    return _chart(fig)


def line_chart(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    secondary: tuple[str, Sequence[float], Sequence[float], str] | None = None,
    step: bool = False,
    hline: tuple[str, float] | None = None,
) -> Chart:
    """Lines (name, xs, ys); optionally one more line on a right-hand axis, and a dashed
    horizontal line (name, y). Step lines are drawn thinner one after another, so a line
    that runs on top of an earlier one leaves that one showing at its edges."""
    fig, ax = _figure()
    for i, (name, xs, ys) in enumerate(series):
        if step:
            ax.step(
                xs,
                ys,
                where="post",
                label=name,
                color=_COLOURS[i % len(_COLOURS)],
                linewidth=max(1.0, 4.0 - 0.8 * i),
            )
        else:
            ax.plot(xs, ys, "-o", ms=3, label=name, color=_COLOURS[i % len(_COLOURS)])
    if hline is not None:
        ax.axhline(hline[1], color="#555555", linestyle="--", linewidth=1.0, label=hline[0])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if secondary is not None:
        name, xs, ys, label = secondary
        ax2 = ax.twinx()
        ax2.plot(xs, ys, "--s", ms=3, color="#555555", label=name)
        ax2.set_ylabel(label)
        ax2.spines[["top"]].set_visible(False)
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, frameon=False)
    elif len(series) > 1 or series:
        ax.legend(fontsize=8, frameon=False)
    return _chart(fig)


def scatter_chart(
    labels: Sequence[str],
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    xlabel: str,
    ylabel: str,
    front: Sequence[int] = (),
) -> Chart:
    """Labelled points, with a Pareto front drawn as a step line through ``front``."""
    fig, ax = _figure(height=3.6)
    ax.scatter(xs, ys, color=_COLOURS[2], zorder=3)
    for label, x, y in zip(labels, xs, ys, strict=True):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if front:
        pts = sorted((xs[i], ys[i]) for i in front)
        ax.step(
            [p[0] for p in pts],
            [p[1] for p in pts],
            where="post",
            color=_COLOURS[1],
            label="Pareto front",
            zorder=2,
        )
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _chart(fig)
