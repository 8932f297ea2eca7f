"""Deployment budgets: an energy per inference (``50uJ``) or a latency (``2ms``).

A budget is what one deployment target allows a sub-network (Cai et al., "Once-for-All",
ICLR 2020, select one sub-network per target without retraining). :func:`parse_budget`
reads the text a user types; :func:`format_budget` writes a budget so that it reads back
exactly (``parse_budget(format_budget(b)) == b``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import ClassVar

from wattwise._errors import ConfigError
from wattwise._records.base import Record

__all__ = ["BUDGET_FORMS", "Budget", "format_budget", "parse_budget"]

#: What :func:`parse_budget` accepts, as said in its error.
BUDGET_FORMS = "an energy per inference (50uJ, 50µJ, 0.2mJ, 1e-4J) or a latency (2ms, 500us, 0.01s)"

#: Unit -> (metric, exponent of ten in SI units). ``µ`` is the micro sign, ``μ`` Greek mu.
_UNITS: dict[str, tuple[str, int]] = {
    "J": ("energy", 0),
    "mJ": ("energy", -3),
    "uJ": ("energy", -6),
    "µJ": ("energy", -6),
    "μJ": ("energy", -6),
    "nJ": ("energy", -9),
    "s": ("latency", 0),
    "ms": ("latency", -3),
    "us": ("latency", -6),
    "µs": ("latency", -6),
    "μs": ("latency", -6),
    "ns": ("latency", -9),
}
#: What :func:`format_budget` writes, largest unit first.
_WRITTEN: dict[str, tuple[tuple[str, int], ...]] = {
    "energy": (("J", 0), ("mJ", -3), ("µJ", -6), ("nJ", -9)),
    "latency": (("s", 0), ("ms", -3), ("µs", -6), ("ns", -9)),
}
_PATTERN = re.compile(r"\s*([0-9.eE+-]+)\s*([a-zA-Zµμ]+)\s*")


@dataclass(frozen=True)
class Budget(Record):
    """What one deployment allows: an energy per inference or a latency (exactly one).

    Attributes:
        energy_per_item_j: the most energy one inference may use, in J (or None).
        latency_s: the longest one forward pass (a batch) may take, in s (or None).
    """

    energy_per_item_j: float | None = None
    latency_s: float | None = None

    derived: ClassVar[tuple[str, ...]] = ("metric", "text")

    def __post_init__(self) -> None:
        given = [v for v in (self.energy_per_item_j, self.latency_s) if v is not None]
        if len(given) != 1:
            raise ConfigError("a budget is an energy per inference or a latency, exactly one")
        if not (math.isfinite(given[0]) and given[0] > 0):
            raise ConfigError(f"a budget must be a positive, finite number, got {given[0]}")

    @property
    def metric(self) -> str:
        """``energy`` or ``latency``."""
        return "energy" if self.energy_per_item_j is not None else "latency"

    @property
    def limit(self) -> float:
        """The budget in SI units: J per inference, or s."""
        value = self.energy_per_item_j if self.energy_per_item_j is not None else self.latency_s
        assert value is not None
        return value

    @property
    def text(self) -> str:
        """The budget as :func:`format_budget` writes it (``50µJ``)."""
        return format_budget(self)

    def allows(self, energy_per_item_j: float, latency_s: float) -> bool:
        """Whether a sub-network with these measured figures fits the budget."""
        value = energy_per_item_j if self.metric == "energy" else latency_s
        return value <= self.limit


def _refuse(text: str) -> ConfigError:
    return ConfigError(f"bad budget {text!r}: give {BUDGET_FORMS}")


def parse_budget(text: str) -> Budget:
    """The budget ``text`` names: ``50uJ``, ``50µJ``, ``0.2mJ``, ``1e-4J``, ``2ms``,
    ``500us``, ``0.01s`` (J, mJ, uJ/µJ, nJ; s, ms, us/µs, ns).

    Raises:
        ConfigError: anything else (one line saying the forms).
    """
    if not isinstance(text, str):
        raise _refuse(str(text))
    found = _PATTERN.fullmatch(text)
    if found is None or found.group(2) not in _UNITS:
        raise _refuse(text)
    metric, exponent = _UNITS[found.group(2)]
    try:
        number = Decimal(found.group(1))
    except DecimalException:
        raise _refuse(text) from None
    if not number.is_finite() or number <= 0:
        raise _refuse(text)
    try:
        value = float(number.scaleb(exponent))
    except (OverflowError, DecimalException):
        raise _refuse(text) from None
    if not (math.isfinite(value) and value > 0):
        raise _refuse(text)
    if metric == "energy":
        return Budget(energy_per_item_j=value)
    return Budget(latency_s=value)


def format_budget(budget: Budget) -> str:
    """``budget`` in the unit that keeps its number at or above 1 (``50µJ``, ``2ms``),
    with every digit it needs to read back as the same float."""
    exact = Decimal(repr(budget.limit))
    units = _WRITTEN[budget.metric]
    unit, exponent = units[-1]
    for name, exp in units:
        if exact.scaleb(-exp) >= 1:
            unit, exponent = name, exp
            break
    number = exact.scaleb(-exponent).normalize()
    digits = format(number, "f") if -12 < number.adjusted() < 16 else format(number, "E")
    return f"{digits}{unit}"
