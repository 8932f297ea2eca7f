"""What wattwise and CodeCarbon report on the same machine, idle and under load.

Each tool tracks the same 6 s of an idle process and the same 6 s of a busy loop (one core),
in this process, one after the other. Printed: the mean CPU and RAM power each reports, and
whether its result says how the figure was obtained (measured by a sensor or estimated by a
model). CodeCarbon must be importable (``pip install codecarbon`` in the benchmark's own
environment; it is not a dependency of wattwise).

Run:  python benchmarks/bench_vs_codecarbon.py [--seconds 6] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wattwise import Tracker


def idle(seconds: float) -> None:
    time.sleep(seconds)


def busy(seconds: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass


def with_wattwise(work: Callable[[float], None], seconds: float) -> dict[str, Any]:
    t = Tracker("vs-codecarbon", store=False, emissions=False)
    with t:
        work(seconds)
    r = t.result
    assert r is not None
    power = {c.name: c.energy_j / r.duration_s for c in r.components}
    return {
        "cpu_power_w": sum(p for n, p in power.items() if n.startswith("cpu")),
        "ram_power_w": power.get("ram"),
        "provenance_stated": {c.name: c.source.label() for c in r.components},
        "uncertainty_j": r.uncertainty_j,
    }


def with_codecarbon(work: Callable[[float], None], seconds: float) -> dict[str, Any]:
    from codecarbon import OfflineEmissionsTracker

    t = OfflineEmissionsTracker(
        country_iso_code="DEU", save_to_file=False, log_level="error", measure_power_secs=1
    )
    t.start()
    work(seconds)
    t.stop()
    d = t.final_emissions_data
    return {
        "cpu_power_w": d.cpu_power,
        "ram_power_w": d.ram_power,
        "provenance_stated": getattr(d, "tracking_mode", None),
        "cpu_model": d.cpu_model,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {}
    for label, work in (("idle", idle), ("one core busy", busy)):
        out[label] = {"wattwise": with_wattwise(work, args.seconds)}
        try:
            out[label]["codecarbon"] = with_codecarbon(work, args.seconds)
        except ImportError:
            out[label]["codecarbon"] = None
    for label, tools in out.items():
        print(f"{label}:")
        for tool, row in tools.items():
            if row is None:
                print(f"  {tool:10s} not importable here")
                continue
            ram = row["ram_power_w"]
            print(
                f"  {tool:10s} CPU {row['cpu_power_w']:6.2f} W  RAM "
                f"{'-' if ram is None else f'{ram:6.2f}'} W  provenance: "
                f"{row['provenance_stated']}"
            )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
