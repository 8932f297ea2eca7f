"""How much carbon-aware scheduling saves on the 2020 grids of Germany and France.

For every hour of 2020 (UTC) a job of 1 h, 4 h or 8 h is released with a deadline 24 h
later; its emissions when started at once (the baseline) are compared with the best
contiguous start and the best interruptible plan (whole trace slots, no minimum chunk;
``--min-chunk 1h`` adds a column with that constraint). The figure reported is the mean,
over the 8784 release hours, of ``1 − best / baseline`` (the job's power cancels out).

Traces: "Let's Wait Awhile" data (Wiesner et al., Middleware 2021; ENTSO-E 2020, IPCC
life-cycle factors), ``../shared/data/carbon/hourly``: Germany at 15 min, France at 30 min,
read as UTC (the files have no DST gap or repeat, so they are not local time).

Usage::

    python benchmarks/bench_schedule.py [--data DIR] [--min-chunk 1h] [--write-docs]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wattwise.carbon import (
    IntensityTrace,
    load_trace,
    parse_duration,
    plan_contiguous,
    plan_interruptible,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "carbon" / "hourly"
DOCS = ROOT / "docs" / "carbon.md"
BEGIN, END = "<!-- bench_schedule:begin -->", "<!-- bench_schedule:end -->"
JOBS_H = (1, 4, 8)
DEADLINE = timedelta(hours=24)


@dataclass(frozen=True)
class Row:
    """Means over the releases of one zone and job length.

    Savings are ratios (``1 − best / baseline``); ``*_g_per_kwh`` are the same savings in
    gCO2e per kWh of the job's energy; times are seconds of planning per mode.
    """

    zone: str
    job_h: int
    mean_intensity: float
    contiguous: float
    interruptible: float
    chunked: float | None
    contiguous_g_per_kwh: float
    interruptible_g_per_kwh: float
    releases: int
    seconds: dict[str, float]


def run(trace: IntensityTrace, job_h: int, min_chunk_s: float | None) -> Row:
    releases = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(8784)]
    duration_s = job_h * 3600.0
    savings: dict[str, list[float]] = {"contiguous": [], "interruptible": [], "chunked": []}
    grams: dict[str, list[float]] = {"contiguous": [], "interruptible": []}
    baselines: list[float] = []
    seconds = dict.fromkeys(savings, 0.0)
    skipped = 0
    for release in releases:
        start_s = release.timestamp()
        if trace.gaps_between(start_s, start_s + duration_s):
            skipped += 1  # starting at once runs through missing data: no baseline to beat
            continue
        window = {"start": release, "deadline": release + DEADLINE, "duration_s": duration_s}
        began = time.perf_counter()
        together = plan_contiguous(trace, **window)  # type: ignore[arg-type]
        middle = time.perf_counter()
        split = plan_interruptible(trace, **window)  # type: ignore[arg-type]
        seconds["contiguous"] += middle - began
        seconds["interruptible"] += time.perf_counter() - middle
        baselines.append(together.baseline_emissions / job_h)
        for mode, plan in (("contiguous", together), ("interruptible", split)):
            savings[mode].append(plan.saving_ratio)
            grams[mode].append((plan.baseline_emissions - plan.emissions) / job_h)
        if min_chunk_s is not None:
            began = time.perf_counter()
            chunked = plan_interruptible(trace, min_chunk_s=min_chunk_s, **window)  # type: ignore[arg-type]
            seconds["chunked"] += time.perf_counter() - began
            savings["chunked"].append(chunked.saving_ratio)
    return Row(
        zone=trace.zone,
        job_h=job_h,
        mean_intensity=statistics.fmean(baselines),
        contiguous=statistics.fmean(savings["contiguous"]),
        interruptible=statistics.fmean(savings["interruptible"]),
        chunked=statistics.fmean(savings["chunked"]) if min_chunk_s is not None else None,
        contiguous_g_per_kwh=statistics.fmean(grams["contiguous"]),
        interruptible_g_per_kwh=statistics.fmean(grams["interruptible"]),
        releases=len(releases) - skipped,
        seconds=seconds,
    )


def table(rows: list[Row], min_chunk: str | None) -> str:
    head = "| zone | job | mean intensity, start at once (g/kWh) | contiguous | interruptible |"
    rule = "| --- | --- | ---: | ---: | ---: |"
    if min_chunk:
        head += f" interruptible, min chunk {min_chunk} |"
        rule += " ---: |"
    head += " saved g/kWh, contiguous | saved g/kWh, interruptible |"
    rule += " ---: | ---: |"
    lines = [head, rule]
    for r in rows:
        line = (
            f"| {r.zone} | {r.job_h} h | {r.mean_intensity:.0f} | {r.contiguous:.1%} | "
            f"{r.interruptible:.1%} |"
        )
        if r.chunked is not None:
            line += f" {r.chunked:.1%} |"
        line += f" {r.contiguous_g_per_kwh:.1f} | {r.interruptible_g_per_kwh:.1f} |"
        lines.append(line)
    releases = sum(r.releases for r in rows)
    left_out = 8784 * len(rows) - releases
    timing = []
    for mode in ("contiguous", "interruptible", "chunked"):
        spent = sum(r.seconds[mode] for r in rows)
        if spent:
            timing.append(f"{mode} {spent / releases * 1e3:.3f} ms")
    lines.append("")
    lines.append(
        "Percentages: mean over the 8784 hourly releases of 2020 (UTC) of "
        "`1 − best / start-at-once`, deadline 24 h after release; no plan uses the "
        "German trace's missing half hour of 19 December, and the "
        f"{left_out} releases (over all rows) whose start at once would run through it are "
        "left out. Saved g/kWh: the same "
        "saving in gCO2e per kWh the job uses. Planning time per plan (one 24 h window): "
        + ", ".join(timing)
        + "."
    )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(doc):
        raise SystemExit(f"{DOCS} has no {BEGIN} ... {END} section")
    DOCS.write_text(pattern.sub(f"{BEGIN}\n{text}\n{END}", doc), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--min-chunk", default=None, help="also plan with this minimum chunk")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    args = parser.parse_args()
    min_chunk_s = parse_duration(args.min_chunk) if args.min_chunk else None
    traces = [
        load_trace(args.data / "de_2020_ci.csv", zone="DE"),
        load_trace(args.data / "fr_2020_ci.csv", zone="FR"),
    ]
    rows = [run(trace, job_h, min_chunk_s) for trace in traces for job_h in JOBS_H]
    text = table(rows, args.min_chunk)
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"\nwrote {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
