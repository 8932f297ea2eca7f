"""The one energy formatter and the ratio phrase: properties over all finite floats."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattwise._units import ENERGY_UNITS_J, format_energy, ratio_phrase

_SIZE = dict(ENERGY_UNITS_J)


def _parse(text: str) -> tuple[float, str]:
    number, unit = text.split(" ")
    return float(number), unit


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_energy_reads_back_in_an_allowed_unit(joules: float) -> None:
    text = format_energy(joules)
    assert "e+" not in text and "e-" not in text and "E" not in text
    number, unit = _parse(text)
    assert unit in _SIZE
    # Three significant digits: within half a unit of the third digit, or below the
    # resolution of the smallest figure written (0.0005 µJ).
    assert math.isclose(number * _SIZE[unit], joules, rel_tol=5e-3, abs_tol=5e-10)


@given(st.floats(min_value=1e-6, max_value=1e12))
def test_the_number_stays_below_1000_but_for_kwh(joules: float) -> None:
    number, unit = _parse(format_energy(joules))
    assert 1 <= number < 1000 or unit == "kWh"
    assert unit != "MJ" or joules < 3.6e6


@given(st.floats(min_value=1e-9, max_value=1e9))
def test_a_negative_energy_is_the_positive_one_with_a_minus(joules: float) -> None:
    assert format_energy(-joules) == "-" + format_energy(joules)


@pytest.mark.parametrize(
    ("joules", "text"),
    [
        (0.0, "0 J"),
        (-0.0, "0 J"),
        (None, "–"),
        (4.2e-7, "0.420 µJ"),
        (0.0009996, "1.00 mJ"),  # 999.6 µJ rounds up into the next unit
        (0.5123, "512 mJ"),
        (-4.2, "-4.20 J"),
        (100.0, "100 J"),
        (999.7, "1.00 kJ"),
        (1234.5, "1.23 kJ"),
        (1.2e3 * 1e-3 * 1e3, "1.20 kJ"),  # never "1.2e+03 mJ"
        (3.6e6, "1.00 kWh"),
        (1e15, "278000000 kWh"),
        (float("nan"), "nan J"),
    ],
)
def test_examples(joules: float | None, text: str) -> None:
    assert format_energy(joules) == text


def test_ratio_phrase_never_calls_the_baseline_less() -> None:
    assert ratio_phrase(5.0, 5.0) == "same energy"
    assert ratio_phrase(1.0, 2.1) == "2.10x less"
    assert ratio_phrase(3.4, 1.0) == "3.40x more"
    assert ratio_phrase(0.0, 1.0) == "n/a"
    assert ratio_phrase(1.0, float("nan")) == "n/a"


@given(st.floats(min_value=1e-9, max_value=1e9), st.floats(min_value=1e-9, max_value=1e9))
def test_ratio_phrase_names_the_direction(energy_j: float, baseline_j: float) -> None:
    phrase = ratio_phrase(energy_j, baseline_j)
    if phrase != "same energy":
        assert phrase.endswith("x less" if energy_j < baseline_j else "x more")
        assert float(phrase.split("x")[0]) > 1.0  # never "1.00x less"
