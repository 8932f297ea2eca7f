"""Statistics of repeated measurements: medians and spread, significance tests, fronts.

Green-AI studies repeat every configuration, report the median with its spread, and test
whether two configurations differ with a non-parametric test (Mann-Whitney U) or Welch's
t-test: energy readings are skewed by background load, so the median and a rank test are the
default here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from wattwise._errors import ConfigError
from wattwise._pareto import pareto_mask
from wattwise._records.base import Record

__all__ = [
    "TESTS",
    "Comparison",
    "Summary",
    "compare",
    "min_p_value",
    "pareto_mask",
    "summarize",
]

#: Significance tests :func:`compare` knows.
TESTS = ("mannwhitney", "welch")

_TEST_NAMES = {"mannwhitney": "Mann-Whitney U (two-sided)", "welch": "Welch's t (two-sided)"}


@dataclass(frozen=True)
class Summary(Record):
    """Repeated measurements of one quantity, in the unit of the field that holds it.

    Quartiles are NumPy's linear interpolation between order statistics.

    Attributes:
        values: the measurements, in the order they were taken.
    """

    values: tuple[float, ...]

    derived: ClassVar[tuple[str, ...]] = ("median", "q1", "q3", "min", "max", "n")

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError("a summary needs at least one value")

    @property
    def n(self) -> int:
        """Number of measurements."""
        return len(self.values)

    @property
    def median(self) -> float:
        """The median."""
        return float(np.median(self.values))

    @property
    def q1(self) -> float:
        """First quartile."""
        return float(np.percentile(self.values, 25))

    @property
    def q3(self) -> float:
        """Third quartile."""
        return float(np.percentile(self.values, 75))

    @property
    def iqr(self) -> float:
        """Interquartile range (``q3 - q1``)."""
        return self.q3 - self.q1

    @property
    def min(self) -> float:
        """Smallest measurement."""
        return float(min(self.values))

    @property
    def max(self) -> float:
        """Largest measurement."""
        return float(max(self.values))


def summarize(values: Sequence[float]) -> Summary:
    """A :class:`Summary` of repeated measurements.

    Raises:
        ConfigError: no values.
    """
    return Summary(tuple(float(v) for v in values))


@dataclass(frozen=True)
class Comparison(Record):
    """A significance test of one quantity between a reference and another configuration.

    Attributes:
        test: ``mannwhitney`` or ``welch``.
        n_reference: measurements of the reference.
        n_other: measurements of the other configuration.
        statistic: the test statistic (U, or t), None when the test could not be run.
        p_value: two-sided p-value, None when the test could not be run.
        alpha: the significance level.
        significant: ``p_value < alpha``; None when the test cannot decide (too few
            repeats to ever reach ``alpha``, or no spread at all).
        note: why the test could not decide, or what to keep in mind; empty otherwise.
    """

    test: str
    n_reference: int
    n_other: int
    statistic: float | None
    p_value: float | None
    alpha: float
    significant: bool | None
    note: str = ""

    derived: ClassVar[tuple[str, ...]] = ("test_name",)

    @property
    def test_name(self) -> str:
        """The test's full name (``Mann-Whitney U (two-sided)``)."""
        return _TEST_NAMES[self.test]

    def describe(self) -> str:
        """One line: ``p=0.008 (Mann-Whitney U (two-sided), 5 vs 5)`` or why not tested."""
        where = f"{_TEST_NAMES[self.test]}, {self.n_reference} vs {self.n_other}"
        if self.p_value is None:
            return f"not tested ({self.note})"
        verdict = {True: "significant", False: "not significant", None: "undecidable"}
        text = f"p={self.p_value:.3g} ({where}): {verdict[self.significant]} at {self.alpha:g}"
        return text + (f"; {self.note}" if self.note else "")


def min_p_value(test: str, n_reference: int, n_other: int) -> float | None:
    """The smallest two-sided p-value a test can give for these group sizes.

    For Mann-Whitney U (exact, no ties) that is ``2 / C(n1 + n2, n1)``: with 3 repeats
    against 3 it is 0.1, so no difference can be significant at 0.05 however large it is.
    Welch's t has no such floor (None).
    """
    if test == "mannwhitney":
        return min(1.0, 2.0 / math.comb(n_reference + n_other, n_reference))
    return None


def compare(
    reference: Sequence[float],
    other: Sequence[float],
    *,
    test: str = "mannwhitney",
    alpha: float = 0.05,
) -> Comparison:
    """Test whether ``other`` differs from ``reference`` (two-sided).

    Args:
        reference: the reference configuration's measurements.
        other: the other configuration's measurements.
        test: ``mannwhitney`` (rank test, no assumption of normality) or ``welch``
            (t-test without assuming equal variances).
        alpha: significance level.

    Raises:
        ConfigError: an unknown test or an alpha outside (0, 1).
    """
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]

    if test not in TESTS:
        raise ConfigError(f"unknown significance test {test!r} (use {' or '.join(TESTS)})")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    a = np.asarray(reference, dtype=float)
    b = np.asarray(other, dtype=float)
    n_a, n_b = len(a), len(b)

    def untested(note: str) -> Comparison:
        return Comparison(test, n_a, n_b, None, None, alpha, None, note)

    if n_a < 2 or n_b < 2:
        return untested("needs at least 2 repeats of each configuration")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        if a[0] == b[0]:
            return Comparison(test, n_a, n_b, None, 1.0, alpha, False, "identical values")
        return untested("no spread in either configuration: the test is undefined")
    floor = min_p_value(test, n_a, n_b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if test == "mannwhitney":
            res = stats.mannwhitneyu(a, b, alternative="two-sided")
        else:
            res = stats.ttest_ind(a, b, equal_var=False)
    statistic, p = float(res.statistic), float(res.pvalue)
    notes = [str(w.message).split(". ")[0] for w in caught]
    if math.isnan(p):
        return untested("; ".join(notes) or "the test is undefined for these values")
    if floor is not None and floor >= alpha:
        notes.append(
            f"with {n_a} vs {n_b} repeats the smallest possible p is {floor:.3g}, so no "
            f"difference can reach {alpha:g}: repeat more"
        )
        return Comparison(test, n_a, n_b, statistic, p, alpha, None, "; ".join(notes))
    return Comparison(test, n_a, n_b, statistic, p, alpha, p < alpha, "; ".join(notes))
