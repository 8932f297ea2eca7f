"""Apple-silicon CPU and GPU power (M1-M4 and their Pro / Max variants), for the estimate.

Where ``powermetrics`` cannot run (not root), the CPU estimate uses the chip's CPU power
under an all-core load from ``meters/data/apple_silicon_power.csv`` in place of a TDP, which
Apple does not publish. Every row names, for its core counts and for its power figures, the
page they come from (title and URL) and whether each figure was read on that page when the
table was checked (2026-12-01). The rule is the same for every row: a row whose core counts
and CPU power were both read is *checked* and the estimate gives it the proxy uncertainty
(:data:`UNCERTAINTY_APPLE_CHECKED`, 40 %); a row with a figure that could not be read is
kept but *unchecked*, with the wider :data:`UNCERTAINTY_APPLE_UNCHECKED` (60 %, as for an
unknown CPU), and the component's detail says which. The GPU figure is listed for reference:
the estimate models no GPU, since no GPU utilisation is read on macOS without root.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from wattwise.meters._cpu_table import CpuSpec
from wattwise.meters._csv_table import load_table, parse_table

__all__ = [
    "UNCERTAINTY_APPLE_CHECKED",
    "UNCERTAINTY_APPLE_UNCHECKED",
    "AppleSiliconSpec",
    "apple_cpu_spec",
    "apple_cpu_uncertainty",
    "apple_silicon_table",
    "lookup_apple_silicon",
    "parse_apple_silicon_table",
]

#: One-sigma relative uncertainty of a checked row's CPU power: the estimate's proxy
#: figure (reviews differ by workload and cooling by 20-30 %).
UNCERTAINTY_APPLE_CHECKED: Final = 0.40
#: The same for a row whose CPU power (or cores) could not be read in its source: as wide
#: as the estimate's unknown-CPU default.
UNCERTAINTY_APPLE_UNCHECKED: Final = 0.60

_TABLE = "apple_silicon_power.csv"
_BRAND = re.compile(r"\bApple\s+(M[1-9])(?:\s+(Pro|Max))?\b", re.IGNORECASE)
_COLUMNS = (
    "chip",
    "p_cores",
    "e_cores",
    "gpu_cores",
    "launch_year",
    "cores_checked",
    "cores_source",
    "cores_url",
    "cpu_w",
    "cpu_w_checked",
    "gpu_w",
    "gpu_w_checked",
    "power_source",
    "power_url",
    "note",
)
_YES_NO = {"yes": True, "no": False}


@dataclass(frozen=True)
class AppleSiliconSpec:
    """One Apple-silicon chip of the table.

    Attributes:
        chip: ``"M1"``, ``"M3 Pro"``, ...
        p_cores: performance cores (largest bin).
        e_cores: efficiency cores.
        gpu_cores: GPU cores (largest bin).
        launch_year: the year it launched.
        cores_checked: the core counts and year were read in ``cores_source``.
        cores_source: the page the core counts come from (publisher, title, date).
        cores_url: its address.
        cpu_w: CPU clusters' power under an all-core load. Units: W.
        cpu_w_checked: ``cpu_w`` was read in ``power_source``.
        gpu_w: GPU power under a full GPU load (reference only). Units: W.
        gpu_w_checked: ``gpu_w`` was read in ``power_source``.
        power_source: the review the power figures come from.
        power_url: its address, or ``""`` where no stored copy was found.
        note: what the power source gives and why a figure is not checked.
    """

    chip: str
    p_cores: int
    e_cores: int
    gpu_cores: int
    launch_year: int
    cores_checked: bool
    cores_source: str
    cores_url: str
    cpu_w: float
    cpu_w_checked: bool
    gpu_w: float
    gpu_w_checked: bool
    power_source: str
    power_url: str
    note: str

    @property
    def cores(self) -> int:
        """Every CPU core (no SMT: one thread each)."""
        return self.p_cores + self.e_cores

    @property
    def checked(self) -> bool:
        """The figures the estimate uses (cores and CPU power) were read in their sources."""
        return self.cores_checked and self.cpu_w_checked

    @property
    def relative_uncertainty(self) -> float:
        """One-sigma relative uncertainty the estimate gives this row's CPU power."""
        return UNCERTAINTY_APPLE_CHECKED if self.checked else UNCERTAINTY_APPLE_UNCHECKED

    def detail(self) -> str:
        """One line for the component's detail: checked or not, and the sources."""
        power = f"CPU {self.cpu_w:g} W: {self.power_source}"
        if self.power_url:
            power += f" <{self.power_url}>"
        cores = f"cores: {self.cores_source} <{self.cores_url}>"
        if self.checked:
            return f"Apple {self.chip} table row, checked: {power}; {cores}"
        unread = [
            name
            for name, ok in (("cores", self.cores_checked), ("CPU power", self.cpu_w_checked))
            if not ok
        ]
        return (
            f"Apple {self.chip} table row, unchecked ({' and '.join(unread)} not read in "
            f"the source: {self.note}; {self.relative_uncertainty:.0%} one-sigma): {power}; "
            f"{cores}"
        )


def _flag(row: dict[str, str], column: str) -> bool:
    value = row[column].strip().lower()
    if value not in _YES_NO:
        raise ValueError(f"{column} must be yes or no, got {row[column]!r}")
    return _YES_NO[value]


def _spec(row: dict[str, str]) -> AppleSiliconSpec:
    return AppleSiliconSpec(
        chip=row["chip"],
        p_cores=int(row["p_cores"]),
        e_cores=int(row["e_cores"]),
        gpu_cores=int(row["gpu_cores"]),
        launch_year=int(row["launch_year"]),
        cores_checked=_flag(row, "cores_checked"),
        cores_source=row["cores_source"],
        cores_url=row["cores_url"],
        cpu_w=float(row["cpu_w"]),
        cpu_w_checked=_flag(row, "cpu_w_checked"),
        gpu_w=float(row["gpu_w"]),
        gpu_w_checked=_flag(row, "gpu_w_checked"),
        power_source=row["power_source"],
        power_url=row["power_url"],
        note=row["note"],
    )


def parse_apple_silicon_table(text: str, where: str) -> tuple[AppleSiliconSpec, ...]:
    """The rows of an Apple-silicon table's CSV text, in file order (``where`` names the
    file in errors).

    Raises:
        DataFileError: unexpected columns, or ``where:LINE: ...`` for a row that does not
            parse.
    """
    return parse_table(text, where, _COLUMNS, _spec)


@functools.cache
def apple_silicon_table() -> tuple[AppleSiliconSpec, ...]:
    """The bundled table, in file order.

    Raises:
        DataFileError: unexpected columns, or a row that does not parse.
    """
    return load_table("wattwise.meters", _TABLE, parse_apple_silicon_table)


def lookup_apple_silicon(brand: str) -> AppleSiliconSpec | None:
    """The table's row for a brand string such as ``"Apple M2 Pro"``, or None."""
    found = _BRAND.search(brand)
    if found is None:
        return None
    chip = found.group(1).upper() + (f" {found.group(2).title()}" if found.group(2) else "")
    return next((row for row in apple_silicon_table() if row.chip == chip), None)


def apple_cpu_spec(brand: str) -> CpuSpec | None:
    """The chip's CPU figures as a CPU-table row for the estimate (basis ``proxy``).

    Its ``source`` says whether the row was checked and names the pages.
    """
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
        source=f"Apple-silicon table: CPU power under an all-core load; {row.detail()}",
        generation="Apple silicon",
        launch_year=row.launch_year,
        note="Apple publishes no TDP: a review's measured CPU power stands in for one",
    )


def apple_cpu_uncertainty(spec: CpuSpec | None) -> float | None:
    """The uncertainty of a spec :func:`apple_cpu_spec` made, or None for any other spec."""
    if spec is None or spec.vendor != "Apple" or spec.generation != "Apple silicon":
        return None
    row = lookup_apple_silicon(f"Apple {spec.model}")
    return None if row is None else row.relative_uncertainty
