"""Report sections for a stored study, whatever its kind.

Every study's ``results`` is a JSON document. Lists of flat records in it become tables.
Results that load back as a typed record (:func:`wattwise._records.load_record`, by their
``kind``) and have plots (:class:`~wattwise._records.Charted`) get them, drawn by chart type:
the energy/accuracy Pareto front of architectures and of the zoo, bars for the energy share
per layer type, per environment, per batching policy and per quantized variant, and step
curves for the anytime curves of a strategies' comparison. The record
types are the levers'; their modules must be imported (the CLI imports the one a study's
kind needs) for the kind to be known.
"""

from __future__ import annotations

from typing import Any

from wattwise._pareto import pareto_mask
from wattwise._records import (
    ChartData,
    Charted,
    CurveData,
    FrontData,
    Record,
    RecordError,
    load_record,
)
from wattwise.report import _plots
from wattwise.report._document import Figure, Section, Table
from wattwise.store._study import StudyRecord

__all__ = ["study_sections"]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(value)


def _records_table(name: str, records: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for rec in records:
        for key, value in rec.items():
            if key not in columns and not isinstance(value, dict):
                columns.append(key)
    rows = tuple(tuple(_cell(rec.get(c)) for c in columns) for rec in records)
    return Table(tuple(columns), rows, name)


def _generic_tables(results: dict[str, Any]) -> list[Table]:
    tables = []
    for key, value in results.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append(_records_table(key, value))
        elif (
            isinstance(value, dict)
            and value
            and all(not isinstance(v, dict | list) for v in value.values())
        ):
            tables.append(
                Table(("key", "value"), tuple((k, _cell(v)) for k, v in value.items()), key)
            )
    scalars = [(k, _cell(v)) for k, v in results.items() if not isinstance(v, list | dict)]
    if scalars:
        tables.insert(0, Table(("figure", "value"), tuple(scalars)))
    return tables


def _figure(chart: ChartData) -> list[Figure]:
    """A chart by its type; none with fewer than two points to compare."""
    if len(chart.labels) < 2:
        return []
    if isinstance(chart, CurveData):
        series = [
            (lab, list(x), list(y))
            for lab, x, y in zip(chart.labels, chart.xs, chart.ys, strict=True)
        ]
        target = ("target", chart.target) if chart.target is not None else None
        return [
            Figure(
                _plots.line_chart(
                    series, xlabel=chart.xlabel, ylabel=chart.ylabel, step=True, hline=target
                ),
                chart.caption,
            )
        ]
    if isinstance(chart, FrontData):
        xs, ys = list(chart.energies), list(chart.accuracies)
        front = [i for i, on in enumerate(pareto_mask(xs, ys)) if on]
        return [
            Figure(
                _plots.scatter_chart(
                    list(chart.labels),
                    xs,
                    ys,
                    xlabel=chart.xlabel,
                    ylabel=chart.ylabel,
                    front=front,
                ),
                chart.caption,
            )
        ]
    return [
        Figure(
            _plots.bar_chart(list(chart.labels), list(chart.values), ylabel=chart.ylabel),
            chart.caption,
        )
    ]


def _typed(results: dict[str, Any]) -> Record | None:
    """The results as the typed record their kind names; None when no loaded module knows
    that kind or version (results stored by an older wattwise, a kind without a record)."""
    try:
        return load_record(results)
    except RecordError:
        return None


def _figures(results: dict[str, Any]) -> list[Figure]:
    record: object = _typed(results)
    if not isinstance(record, Charted):
        return []
    return [figure for chart in record.charts() for figure in _figure(chart)]


def study_sections(study: StudyRecord) -> tuple[Section, ...]:
    """The sections describing a study: its settings, results tables and plots."""
    params = Table(("setting", "value"), tuple((k, _cell(v)) for k, v in study.params.items()))
    sections = [
        Section(
            f"Study: {study.kind}",
            (
                f"{study.name}: {len(study.runs)} runs, created "
                f"{study.created_at:%Y-%m-%d %H:%M} UTC.",
            ),
            (params,),
        )
    ]
    if study.results is None:
        sections.append(
            Section("Results", ("This study has no results yet (it was not finished).",))
        )
        return tuple(sections)
    sections.append(
        Section(
            "Results",
            (),
            tuple(_generic_tables(study.results)),
            tuple(_figures(study.results)),
        )
    )
    return tuple(sections)
