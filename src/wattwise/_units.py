"""The one way wattwise writes an energy, and a ratio of two energies, for people.

Every figure the CLI, the report and the demo print goes through :func:`format_energy`, so
the same energy reads the same everywhere: three significant digits, fixed point (never
``1.2e+03 mJ``), in the unit that keeps the number between 1 and 1000 (µJ, mJ, J, kJ, MJ,
and kWh from 1 kWh = 3.6 MJ up). :func:`ratio_phrase` words a ratio so that a baseline
compared with itself reads ``same energy``, never ``1.00x less``.
"""

from __future__ import annotations

import math

__all__ = ["ENERGY_UNITS_J", "J_PER_KWH", "format_energy", "ratio_phrase"]

J_PER_KWH = 3.6e6

#: The units :func:`format_energy` writes, smallest first, with their size in J.
ENERGY_UNITS_J: tuple[tuple[str, float], ...] = (
    ("µJ", 1e-6),
    ("mJ", 1e-3),
    ("J", 1.0),
    ("kJ", 1e3),
    ("MJ", 1e6),
    ("kWh", J_PER_KWH),
)

_SIGNIFICANT = 3
_MAX_DECIMALS = 3  # below 0.001 µJ a figure rounds to 0: no meter resolves that


def _unit_index(magnitude_j: float) -> int:
    """The largest unit the magnitude is at least 1 of (µJ below 1 µJ; kWh from 1 kWh)."""
    if magnitude_j >= J_PER_KWH:
        return len(ENERGY_UNITS_J) - 1
    index = 0
    for i, (_, size) in enumerate(ENERGY_UNITS_J[:-1]):
        if magnitude_j >= size:
            index = i
    return index


def _fixed(value: float) -> str:
    """``value`` to three significant digits in fixed point (at most three decimals)."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    rounded = round(value, _SIGNIFICANT - 1 - exponent)
    if rounded != 0:  # 9.996 rounds to 10.0: count the digits of the rounded figure
        exponent = math.floor(math.log10(abs(rounded)))
    decimals = min(_MAX_DECIMALS, max(0, _SIGNIFICANT - 1 - exponent))
    return f"{rounded:.{decimals}f}"


def format_energy(joules: float | None) -> str:
    """A readable energy, e.g. ``12.3 kJ``, ``0.512 mJ``, ``-4.20 J``, ``1.50 kWh``.

    Three significant digits in fixed point, in the unit of :data:`ENERGY_UNITS_J` that keeps
    the number below 1000 (kWh from 3.6 MJ on, with as many digits as it takes). Zero is
    ``0 J``; a missing value is ``–``; ``nan``/``inf`` are written as such.

    Args:
        joules: the energy in J, or ``None``.
    """
    if joules is None:
        return "–"
    if not math.isfinite(joules):
        return f"{joules} J"
    if joules == 0:
        return "0 J"
    index = _unit_index(abs(joules))
    while True:
        unit, size = ENERGY_UNITS_J[index]
        text = _fixed(joules / size)
        # 999.7 J rounds to "1000": write it as 1.00 kJ instead.
        if abs(float(text)) >= 1000 and unit != "kWh":
            index += 1
            continue
        if float(text) == 0:
            return f"0 {unit}"
        return f"{text} {unit}"


def ratio_phrase(energy_j: float, baseline_j: float, *, tolerance: float = 0.005) -> str:
    """How ``energy_j`` compares with ``baseline_j`` in words.

    ``2.10x less`` / ``3.40x more`` / ``same energy`` (within ``tolerance``, relative, of
    the baseline: the baseline compared with itself reads ``same energy``), ``n/a`` when
    either figure is not a positive, finite energy.

    Args:
        energy_j: the energy of the thing compared, in J.
        baseline_j: the energy it is compared with, in J.
        tolerance: relative difference under which the two are called the same.
    """
    if not (
        math.isfinite(energy_j) and math.isfinite(baseline_j) and energy_j > 0 and baseline_j > 0
    ):
        return "n/a"
    if abs(energy_j - baseline_j) <= tolerance * baseline_j:
        return "same energy"
    if energy_j < baseline_j:
        return f"{baseline_j / energy_j:.2f}x less"
    return f"{energy_j / baseline_j:.2f}x more"
