"""Report sections for a stored study, whatever its kind.

Every study's ``results`` is a JSON document. Lists of flat records in it become tables;
known kinds also get their plots (the energy/accuracy Pareto front for architectures, the
energy share per layer type, anytime curves for sweeps, batching and zoo tables).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wattwise._pareto import pareto_mask
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


def _num(rec: dict[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = rec.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def _pareto_figure(
    records: list[dict[str, Any]],
    label_key: str,
    energy_keys: tuple[str, ...],
    acc_keys: tuple[str, ...],
    what: str,
) -> list[Figure]:
    pts = [(r, _num(r, *energy_keys), _num(r, *acc_keys)) for r in records]
    usable = [
        (str(r.get(label_key, "?")), e, a) for r, e, a in pts if e is not None and a is not None
    ]
    if len(usable) < 2:
        return []
    labels = [u[0] for u in usable]
    xs = [float(u[1]) for u in usable]
    ys = [float(u[2]) for u in usable]
    front = [i for i, on in enumerate(pareto_mask(xs, ys)) if on]
    return [
        Figure(
            _plots.scatter_chart(
                labels, xs, ys, xlabel="energy (J)", ylabel="accuracy", front=front
            ),
            what,
        )
    ]


def _bar_figure(
    records: list[dict[str, Any]], label_key: str, value_key: str, ylabel: str, what: str
) -> list[Figure]:
    rows = [(str(r.get(label_key, "?")), _num(r, value_key)) for r in records]
    usable = [(label, v) for label, v in rows if v is not None]
    if len(usable) < 2:
        return []
    return [
        Figure(
            _plots.bar_chart([u[0] for u in usable], [float(u[1]) for u in usable], ylabel=ylabel),
            what,
        )
    ]


def _figures_for(kind: str, results: dict[str, Any]) -> list[Figure]:
    makers: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
        "architectures": lambda r: _pareto_figure(
            r.get("models", []),
            "model",
            ("energy_j",),
            ("val_accuracy",),
            "Energy against validation accuracy per model, with the Pareto front.",
        ),
        "layers": lambda r: _bar_figure(
            [{"type": k, "share": v} for k, v in (r.get("by_type") or {}).items()],
            "type",
            "share",
            "share of energy (attributed)",
            "Energy share per layer type, attributed by time share of the measured window.",
        ),
        "environments": lambda r: _bar_figure(
            r.get("environments", []),
            "label",
            "energy_j",
            "energy (J)",
            "Median energy of the same work per environment setting.",
        ),
        "batching": lambda r: _bar_figure(
            r.get("policies", []),
            "policy",
            "j_per_request",
            "energy per request (J)",
            "Energy per request of each batching policy under the same request stream.",
        ),
        "quantization": lambda r: _bar_figure(
            r.get("variants", []),
            "variant",
            "j_per_inference",
            "energy per inference (J)",
            "Energy per inference of each variant of the model.",
        ),
        "zoo": lambda r: _pareto_figure(
            r.get("models", []),
            "model",
            ("j_per_image",),
            ("top1",),
            "Energy per image against ImageNet top-1, with the Pareto front.",
        ),
    }
    maker = makers.get(kind)
    return maker(results) if maker is not None else []


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
            tuple(_figures_for(study.kind, study.results)),
        )
    )
    return tuple(sections)
