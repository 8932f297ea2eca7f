"""meters/_csv_table.py: the bundled CSV tables' reader (comment lines, columns, bad rows
named by file and line)."""

from __future__ import annotations

import pytest

from wattwise._errors import DataFileError
from wattwise.meters._csv_table import load_table, parse_table

COLUMNS = ("name", "watts")


def _row(record: dict[str, str]) -> tuple[str, float]:
    watts = float(record["watts"])
    if watts <= 0:
        raise ValueError("watts must be positive")
    return record["name"], watts


def test_comments_and_blank_lines_are_skipped_and_rows_kept_in_order() -> None:
    text = "# a comment\nname,watts\n\nA,1.5\n# another\nB,2\n"
    assert parse_table(text, "t.csv", COLUMNS, _row) == (("A", 1.5), ("B", 2.0))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("# only comments\n\n", "t.csv: no header row"),
        ("# c\nname,power\nA,1\n", "t.csv:2: unexpected columns ('name', 'power')"),
        ("# c\nname,watts\nA,1\n# c\nB,1,extra\n", "t.csv:5: 3 fields, expected 2"),
        ("name,watts\nA,-1\n", "t.csv:2: watts must be positive"),
        ("name,watts\nA,x\n", "t.csv:2: could not convert string to float: 'x'"),
    ],
)
def test_a_bad_file_is_one_error_naming_file_and_line(text: str, says: str) -> None:
    with pytest.raises(DataFileError) as caught:
        parse_table(text, "t.csv", COLUMNS, _row)
    assert str(caught.value) == says


def test_the_no_header_message_is_the_callers() -> None:
    with pytest.raises(DataFileError, match=r"^t.csv: empty; rebuild it$"):
        parse_table("", "t.csv", COLUMNS, _row, no_header="empty; rebuild it")


def test_a_packaged_table_is_read_and_named_by_its_package_path() -> None:
    names: list[str] = []

    def parse(text: str, where: str) -> tuple[str, ...]:
        names.append(where)
        return tuple(line for line in text.splitlines() if line.startswith("model,"))

    assert load_table("wattwise.meters", "cpu_power.csv", parse) == (
        "model,vendor,tdp_w,cores,threads,generation,launch_year,basis,source,note",
    )
    assert names == ["wattwise/meters/data/cpu_power.csv"]
