"""Build the hourly intensity traces bundled for ``wattwise demo`` and ``wattwise schedule``.

Reads the 2020 traces of Germany (15-minute steps) and France (30-minute steps) from
"Let's Wait Awhile" (Wiesner, Behnke, Scheinert, Gontarska, Thamsen, Middleware 2021,
doi:10.1145/3464298.3493399; computed from ENTSO-E Transparency Platform data), kept in
``../shared/data/carbon/hourly``, and writes hourly means for the calendar year 2020 into
``src/wattwise/carbon/data/trace_<zone>_2020_hourly.csv`` in the two-column layout the
trace loader reads (``Time``, ``Carbon Intensity``; times in UTC: see docs/carbon.md).
An hour is written only when every step inside it is present. Deterministic output: a test
checks that running the script again reproduces the files byte for byte.

Usage::

    python scripts/build_demo_traces.py [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "carbon" / "hourly"
DEFAULT_OUT = ROOT / "src" / "wattwise" / "carbon" / "data"
FILES = {"de": ("de_2020_ci.csv", 4), "fr": ("fr_2020_ci.csv", 2)}  # zone: (file, steps/hour)


def hourly(source: Path, steps_per_hour: int) -> list[tuple[datetime, float]]:
    """Hourly means of a trace, for the hours of 2020 whose every step is present."""
    buckets: dict[datetime, list[float]] = defaultdict(list)
    with source.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            t = datetime.fromisoformat(row["Time"])
            if t.year != 2020:
                continue
            buckets[t.replace(minute=0, second=0)].append(float(row["Carbon Intensity"]))
    return [
        (hour, sum(values) / len(values))
        for hour, values in sorted(buckets.items())
        if len(values) == steps_per_hour
    ]


def render(zone: str, rows: list[tuple[datetime, float]]) -> str:
    """The CSV text of one zone's hourly trace."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Time", "Carbon Intensity"])
    for hour, value in rows:
        writer.writerow([hour.strftime("%Y-%m-%d %H:%M:%S"), f"{value:.3f}"])
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    for zone, (name, steps) in FILES.items():
        text = render(zone, hourly(args.source / name, steps))
        path = args.out / f"trace_{zone}_2020_hourly.csv"
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({text.count(chr(10)) - 1} hours)")


if __name__ == "__main__":
    main()
