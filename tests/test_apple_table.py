"""The Apple-silicon power table (meters/data/apple_silicon_power.csv): every row cites its
pages, says which figures were read there, and the estimate gives a checked row 40 % and an
unchecked one 60 %, saying which in the component's detail."""

from __future__ import annotations

import csv
import importlib.resources
import io
import re
from urllib.parse import urlparse

import pytest

from wattwise._errors import DataFileError
from wattwise.meters._apple_table import (
    UNCERTAINTY_APPLE_CHECKED,
    UNCERTAINTY_APPLE_UNCHECKED,
    apple_cpu_spec,
    apple_cpu_uncertainty,
    apple_silicon_table,
    lookup_apple_silicon,
    parse_apple_silicon_table,
)
from wattwise.meters._base import Method
from wattwise.meters._cpu_table import lookup_cpu
from wattwise.meters._estimate import (
    UNCERTAINTY_CPU_KNOWN,
    UNCERTAINTY_CPU_PROXY,
    UNCERTAINTY_CPU_UNKNOWN,
    EstimateMeter,
)


def _is_url(text: str) -> bool:
    parsed = urlparse(text)
    return parsed.scheme in {"http", "https"} and "." in parsed.netloc and " " not in text


@pytest.mark.parametrize(
    ("brand", "chip"),
    [
        ("Apple M1", "M1"),
        ("Apple M1 Pro", "M1 Pro"),
        ("Apple M2 Max", "M2 Max"),
        ("Apple M3 Pro", "M3 Pro"),
        ("Apple M4", "M4"),
        ("Apple M4 Max", "M4 Max"),
        ("AMD EPYC 7B13", None),
        ("Apple M9", None),
    ],
)
def test_apple_table_finds_the_chip(brand: str, chip: str | None) -> None:
    found = lookup_apple_silicon(brand)
    assert (found.chip if found else None) == chip


def test_apple_table_covers_m1_to_m4() -> None:
    chips = {row.chip for row in apple_silicon_table()}
    assert chips == {f"M{n}{v}" for n in range(1, 5) for v in ("", " Pro", " Max")}
    for row in apple_silicon_table():
        assert 0 < row.cpu_w < 200 and 0 < row.gpu_w < 200, row.chip
        assert row.cores >= 8 and row.gpu_cores >= 8, row.chip
        assert 2020 <= row.launch_year <= 2024, row.chip


def _bundled_text() -> str:
    return (
        importlib.resources.files("wattwise.meters")
        .joinpath("data", "apple_silicon_power.csv")
        .read_text(encoding="utf-8")
    )


def test_the_bundled_text_parses_to_the_table() -> None:
    assert parse_apple_silicon_table(_bundled_text(), "t.csv") == apple_silicon_table()


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("cpu_w_checked", "maybe", "cpu_w_checked must be yes or no, got 'maybe'"),
        ("p_cores", "eight", "invalid literal for int() with base 10: 'eight'"),
        ("cpu_w", "", "could not convert string to float: ''"),
    ],
)
def test_a_bad_row_is_named_by_file_and_line(column: str, value: str, says: str) -> None:
    lines = _bundled_text().splitlines()
    header_no = next(i for i, line in enumerate(lines) if line.startswith("chip,"))
    columns = lines[header_no].split(",")
    bad_no = header_no + 2  # the second data row (0-based index; file line bad_no + 1)
    fields = next(csv.reader([lines[bad_no]]))
    fields[columns.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    lines[bad_no] = out.getvalue()
    with pytest.raises(DataFileError) as caught:
        parse_apple_silicon_table("\n".join(lines) + "\n", "apple.csv")
    assert str(caught.value) == f"apple.csv:{bad_no + 1}: {says}"


def test_a_table_with_other_columns_is_refused_naming_the_header_line() -> None:
    with pytest.raises(DataFileError, match=r"^t\.csv:2: unexpected columns \('chip', 'cpu_w'\)$"):
        parse_apple_silicon_table("# c\nchip,cpu_w\nM1,20\n", "t.csv")


_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip


def _numbers_named(text: str) -> set[int]:
    """Every number a summary names, as digits ("10-core", "8 + 4") or words ("four")."""
    found = {int(n) for n in re.findall(r"\d+", text)}
    found |= {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS}
    return found


def test_every_row_names_the_page_of_its_cores_with_a_url() -> None:
    for row in apple_silicon_table():
        assert row.cores_checked, f"{row.chip}: core counts were read for every row"
        assert row.cores_source.strip() and _is_url(row.cores_url), row.chip
        # The row's figures are the ones its source's summary names, of the launch year.
        named = _numbers_named(row.cores_source)
        assert {row.p_cores, row.e_cores, row.gpu_cores} <= named, (row.chip, named)
        assert f"({row.launch_year}-" in row.cores_source, row.chip


def test_every_power_figure_names_its_review_and_says_whether_it_was_read() -> None:
    for row in apple_silicon_table():
        assert row.power_source.strip(), row.chip
        assert row.note.strip(), f"{row.chip}: the note says what the page gives"
        assert row.power_url == "" or _is_url(row.power_url), row.chip
        if row.cpu_w_checked:
            # A checked figure was read on a named, stored page, and the row says it.
            assert _is_url(row.power_url), row.chip
            assert f"{row.cpu_w:g} W" in row.power_source or f"{row.cpu_w:g} W" in row.note
        if not row.power_url:
            assert not row.cpu_w_checked and not row.gpu_w_checked, row.chip
            assert "not found in the stored corpora" in row.power_source, row.chip


def test_the_check_found_only_the_m2_max_cpu_figure() -> None:
    checked = {row.chip for row in apple_silicon_table() if row.checked}
    assert checked == {"M2 Max"}
    assert not any(row.gpu_w_checked for row in apple_silicon_table())


def test_unchecked_rows_get_the_wider_spread() -> None:
    assert UNCERTAINTY_APPLE_CHECKED == UNCERTAINTY_CPU_PROXY
    assert UNCERTAINTY_APPLE_UNCHECKED == UNCERTAINTY_CPU_UNKNOWN > UNCERTAINTY_APPLE_CHECKED
    for row in apple_silicon_table():
        expected = UNCERTAINTY_APPLE_CHECKED if row.checked else UNCERTAINTY_APPLE_UNCHECKED
        assert row.relative_uncertainty == expected, row.chip
        assert apple_cpu_uncertainty(apple_cpu_spec(f"Apple {row.chip}")) == expected


def test_no_other_cpu_spec_gets_an_apple_uncertainty() -> None:
    assert apple_cpu_uncertainty(None) is None
    assert apple_cpu_uncertainty(lookup_cpu("AMD EPYC 7B13 64-Core Processor")) is None


def _cpu_component(brand: str, cpu_tdp_w: float | None = None) -> tuple[str, float]:
    meter = EstimateMeter(
        cpu_brand=brand, cpu_tdp_w=cpu_tdp_w, include_ram=False, visible_cpus=8, environ={}
    )
    (cpu,) = meter.start(0.0)
    meter.close()
    assert cpu.source.method is Method.ESTIMATED
    return cpu.source.detail, cpu.relative_uncertainty


def test_estimate_says_a_checked_row_is_checked_and_names_its_sources() -> None:
    detail, uncertainty = _cpu_component("Apple M2 Max")
    assert uncertainty == UNCERTAINTY_APPLE_CHECKED
    row = lookup_apple_silicon("Apple M2 Max")
    assert row is not None
    assert "Apple-silicon table" in detail and "TDP 36 W" in detail
    assert "Apple M2 Max table row, checked: " in detail and "unchecked" not in detail
    assert row.power_url in detail and row.cores_url in detail
    assert "Notebookcheck" in detail


def test_estimate_says_an_unchecked_row_is_unchecked_with_the_wider_spread() -> None:
    detail, uncertainty = _cpu_component("Apple M3 Max")
    assert uncertainty == UNCERTAINTY_APPLE_UNCHECKED
    assert "TDP 56 W" in detail
    assert "Apple M3 Max table row, unchecked (CPU power not read in the source" in detail
    assert "60% one-sigma" in detail


def test_a_given_tdp_on_an_apple_chip_keeps_the_known_uncertainty() -> None:
    detail, uncertainty = _cpu_component("Apple M3 Max", cpu_tdp_w=40.0)
    assert uncertainty == UNCERTAINTY_CPU_KNOWN
    assert "TDP 40 W (user" in detail
