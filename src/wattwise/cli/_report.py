"""``wattwise report``: a self-contained HTML or Markdown report of a run or a study."""

from __future__ import annotations

import contextlib
import importlib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import wattwise
from wattwise.cli._common import console, fail
from wattwise.store import RunStore

if TYPE_CHECKING:
    from wattwise.report import Section
    from wattwise.store import StudyRecord

__all__ = ["report"]


class ReportFormat(StrEnum):
    """Formats of ``wattwise report`` (matplotlib loads only when a report is made)."""

    HTML = "html"
    MD = "md"


#: The report file extensions, and the format each one means.
SUFFIXES = {
    ".html": ReportFormat.HTML,
    ".htm": ReportFormat.HTML,
    ".md": ReportFormat.MD,
    ".markdown": ReportFormat.MD,
}


#: The package holding each study kind's record: imported before a study is reported, so
#: that its results load back typed (and get their plots). Missing extras are skipped.
KIND_PACKAGES = {
    "architectures": "wattwise.studies",
    "layers": "wattwise.studies",
    "environments": "wattwise.studies",
    "snn": "wattwise.studies",
    "keypoints": "wattwise.studies",
    "batching": "wattwise.infer",
    "quantization": "wattwise.infer",
    "zoo": "wattwise.infer",
    "sweep": "wattwise.search",
    "sweep-compare": "wattwise.search",
    "training": "wattwise.train",
    "ofa-selection": "wattwise.ofa",
    "ofa-measurements": "wattwise.ofa",
}


def _import_records(kind: str) -> None:
    package = KIND_PACKAGES.get(kind)
    if package is not None:
        with contextlib.suppress(ImportError):  # without the extra: tables, no plots
            importlib.import_module(package)


def _format_for(out: Path, fmt: ReportFormat | None) -> ReportFormat:
    """The format --out's extension means; exit 2 when it is unknown or contradicts --format."""
    suffix = out.suffix.lower()
    implied = SUFFIXES.get(suffix)
    if implied is None:
        what = f"extension {out.suffix!r}" if out.suffix else "no extension"
        fail(
            f"--out {out} has {what}: a report is written as {', '.join(SUFFIXES)}; "
            "name the file with one of them"
        )
    if fmt is not None and fmt is not implied:
        fail(f"--format {fmt.value} contradicts --out {out}, which is {implied.value}")
    return implied


def _study_embodied(st: RunStore, study: StudyRecord) -> Section:
    """The embodied estimate of a study's runs, summed, beside their operational emissions."""
    from wattwise.carbon import embodied_for_runs
    from wattwise.report import Section, embodied_section

    runs = [st.get_run(r.run_id) for r in study.runs]
    if not runs:
        return Section("Embodied emissions (estimate)", ("This study has no runs.",))
    carbon = [r.carbon.emissions_g for r in runs if r.carbon is not None]
    operational = sum(carbon) if len(carbon) == len(runs) else None
    return embodied_section(embodied_for_runs(runs), operational)


def report(
    run_id: Annotated[str | None, typer.Argument(help="Run id or unique prefix.")] = None,
    study: Annotated[str | None, typer.Option(help="Report a study instead of a run.")] = None,
    last: Annotated[bool, typer.Option("--last", help="Report the newest run.")] = False,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="html or md (default: from --out's extension)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the report.")] = Path(
        "wattwise-report/report.html"
    ),
    store: Annotated[
        str | None, typer.Option(help="Store URL (default: WATTWISE_STORE or a local SQLite file).")
    ] = None,
) -> None:
    """Write a report of one run (RUN_ID or --last) or of a study (--study ID)."""
    from wattwise.report import (
        TIMELINE_POINTS,
        Report,
        find_training_history,
        run_sections,
        study_sections,
        training_sections,
        write_report,
    )

    chosen = sum(x for x in (run_id is not None, study is not None, last))
    if chosen != 1:
        fail("give exactly one of RUN_ID, --study ID or --last")
    fmt = _format_for(out, fmt)
    st = RunStore.open(store, read_only=True)
    try:
        if study is not None:
            record = study_record = st.get_study(study)
            _import_records(record.kind)
            title = f"wattwise study: {record.name}"
            subtitle = f"{record.kind} study {record.study_id[:12]}, {len(record.runs)} runs"
            sections = (*study_sections(study_record), _study_embodied(st, study_record))
        else:
            if last:
                runs = st.list_runs(limit=1)
                if not runs:
                    fail(f"no runs in {st.display_url} yet: try `wattwise run -- CMD`")
                run_id = runs[0].run_id
            assert run_id is not None
            # The timeline aggregated in the database: a run of weeks is never loaded whole.
            result = st.get_run(run_id, timeline_points=TIMELINE_POINTS)
            title = f"wattwise run: {result.name}"
            subtitle = (
                f"run {result.run_id[:12]}, {result.status.value}, started "
                f"{result.started_at:%Y-%m-%d %H:%M:%S} UTC on {result.host}"
            )
            sections = run_sections(result)
            history = find_training_history(st, result.run_id)
            if history is not None:  # a run of `wattwise train` / fit(): what it bought
                sections = (sections[0], *training_sections(history), *sections[1:])
    finally:
        st.close()
    doc = Report(
        title,
        subtitle,
        sections,
        {"version": wattwise.__version__, "made_at": datetime.now(UTC).isoformat()},
    )
    path = write_report(doc, out, fmt.value)
    charts = path.parent / f"{path.stem}_files"
    also = f" (its charts in {charts}/)" if fmt is ReportFormat.MD and charts.is_dir() else ""
    console.print(f"wrote {path}{also}", highlight=False, markup=False)
