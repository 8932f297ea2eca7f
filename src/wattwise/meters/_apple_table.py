"""Apple-silicon CPU and GPU power (M1-M4 and their Pro / Max variants), for the estimate.

Where ``powermetrics`` cannot run (not root), the CPU estimate uses the chip's CPU power
under an all-core load from ``meters/data/apple_silicon_power.csv`` in place of a TDP, which
Apple does not publish. Each row cites the review its figures come from; they are treated
as a proxy (the estimate's 40 % uncertainty). The GPU figure is listed for reference: the
estimate models no GPU, since no GPU utilisation is read on macOS without root.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import re
from dataclasses import dataclass

from wattwise._errors import DataFileError
from wattwise.meters._cpu_table import CpuSpec

__all__ = ["AppleSiliconSpec", "apple_cpu_spec", "apple_silicon_table", "lookup_apple_silicon"]

_TABLE = "apple_silicon_power.csv"
_BRAND = re.compile(r"\bApple\s+(M[1-9])(?:\s+(Pro|Max))?\b", re.IGNORECASE)


@dataclass(frozen=True)
class AppleSiliconSpec:
    """One Apple-silicon chip of the table.

    Attributes:
        chip: ``"M1"``, ``"M3 Pro"``, ...
        p_cores: performance cores (largest bin).
        e_cores: efficiency cores.
        gpu_cores: GPU cores (largest bin).
        cpu_w: CPU clusters' power under an all-core load. Units: W.
        gpu_w: GPU power under a full GPU load. Units: W.
        launch_year: the year it launched.
        source: the review the figures come from.
    """

    chip: str
    p_cores: int
    e_cores: int
    gpu_cores: int
    cpu_w: float
    gpu_w: float
    launch_year: int
    source: str

    @property
    def cores(self) -> int:
        """Every CPU core (no SMT: one thread each)."""
        return self.p_cores + self.e_cores


@functools.cache
def apple_silicon_table() -> tuple[AppleSiliconSpec, ...]:
    """The bundled table, in file order."""
    text = importlib.resources.files("wattwise.meters").joinpath("data", _TABLE).read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows: list[AppleSiliconSpec] = []
    for row in csv.DictReader(lines):
        try:
            rows.append(
                AppleSiliconSpec(
                    chip=row["chip"],
                    p_cores=int(row["p_cores"]),
                    e_cores=int(row["e_cores"]),
                    gpu_cores=int(row["gpu_cores"]),
                    cpu_w=float(row["cpu_w"]),
                    gpu_w=float(row["gpu_w"]),
                    launch_year=int(row["launch_year"]),
                    source=row["source"],
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataFileError(f"wattwise/meters/data/{_TABLE}: bad row {row}: {error}") from None
    return tuple(rows)


def lookup_apple_silicon(brand: str) -> AppleSiliconSpec | None:
    """The table's row for a brand string such as ``"Apple M2 Pro"``, or None."""
    found = _BRAND.search(brand)
    if found is None:
        return None
    chip = found.group(1).upper() + (f" {found.group(2).title()}" if found.group(2) else "")
    return next((row for row in apple_silicon_table() if row.chip == chip), None)


def apple_cpu_spec(brand: str) -> CpuSpec | None:
    """The chip's CPU figures as a CPU-table row for the estimate (basis ``proxy``)."""
    row = lookup_apple_silicon(brand)
    if row is None:
        return None
    return CpuSpec(
        model=row.chip,
        vendor="Apple",
        tdp_w=row.cpu_w,
        cores=row.cores,
        threads=row.cores,
        basis="proxy",
        source=f"Apple-silicon table: CPU power under an all-core load, {row.source}",
        generation="Apple silicon",
        launch_year=row.launch_year,
        note="Apple publishes no TDP: a review's measured CPU power stands in for one",
    )
