"""Bundled CSV tables: read a packaged file, skip its ``#`` comment lines, check its
columns, and build one record a row, a bad row named by file and line.

Used by the CPU power table (:mod:`wattwise.meters._cpu_table`), the CPU generation rules
(:mod:`wattwise.meters._cpu_identify`) and the Apple-silicon power table
(:mod:`wattwise.meters._apple_table`)."""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Callable
from typing import TypeVar

from wattwise._errors import DataFileError

__all__ = ["load_table", "parse_table"]

_T = TypeVar("_T")


def parse_table(
    text: str,
    where: str,
    columns: tuple[str, ...],
    build: Callable[[dict[str, str]], _T],
    *,
    no_header: str = "no header row",
) -> tuple[_T, ...]:
    """The records of a CSV text: ``build`` of each row after the header (a dict of
    ``columns`` to fields; a ValueError it raises says what is wrong). Blank lines and lines
    starting with ``#`` are skipped; ``where`` names the file in errors.

    Raises:
        DataFileError: ``where: {no_header}``, ``where:LINE: unexpected columns ...``, or
            ``where:LINE: ...`` for a row of another field count or one ``build`` refuses.
    """
    body = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not body:
        raise DataFileError(f"{where}: {no_header}")
    reader = csv.reader(line for _, line in body)
    header = tuple(next(reader))
    if header != columns:
        raise DataFileError(f"{where}:{body[0][0]}: unexpected columns {header}")
    records: list[_T] = []
    for (line_no, _), row in zip(body[1:], reader, strict=True):
        try:
            if len(row) != len(columns):
                raise ValueError(f"{len(row)} fields, expected {len(columns)}")
            records.append(build(dict(zip(columns, row, strict=True))))
        except ValueError as exc:
            raise DataFileError(f"{where}:{line_no}: {exc}") from None
    return tuple(records)


def load_table(
    package: str, name: str, parse: Callable[[str, str], tuple[_T, ...]]
) -> tuple[_T, ...]:
    """``parse(text, where)`` of the data file ``data/<name>`` of ``package`` (``where`` is
    e.g. ``wattwise/meters/data/cpu_power.csv``)."""
    resource = importlib.resources.files(package).joinpath("data", name)
    where = f"{package.replace('.', '/')}/data/{name}"
    return parse(resource.read_text(encoding="utf-8"), where)
