"""Render a :class:`Report` to an HTML page or a Markdown file (jinja2).

HTML is self-contained: the plots are inline SVG, so the one file can be mailed or opened
anywhere. Markdown links its plots as PNG files in a folder beside it
(``report.md`` -> ``report_files/chart-1.png``), written by :func:`write_report`: GitHub and
most Markdown viewers do not show ``data:`` images, and a 30 KB base64 line is unreadable
in the source.

HTML autoescaping is on: every string a user gave (run names, model names, paths) is
escaped; only the SVG of the figures, which matplotlib produced with text as paths, is
inserted as markup. Markdown escapes the characters that would start markup or break a
table.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from pathlib import Path

import jinja2

from wattwise._errors import ConfigError
from wattwise.report._document import Chart, Report

__all__ = ["ReportFormat", "render", "write_report"]


class ReportFormat(enum.StrEnum):
    """Formats a report can be written in."""

    HTML = "html"
    MD = "md"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
_NUMBER = re.compile(r"^[-+]?[\d.,]+(\s?[a-zA-Z%/]+)?$")


def _md(text: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _urlpath(text: str) -> str:
    return urllib.parse.quote(text, safe="/")


def _files_dir_for(path: str | Path) -> str:
    """The folder, beside a Markdown report, holding its charts: ``report.md`` ->
    ``report_files``."""
    return f"{Path(path).stem}_files"


def _charts(report: Report) -> list[Chart]:
    """The report's charts in order: ``chart-N.png`` of the Markdown is ``_charts()[N-1]``."""
    return [fig.chart for section in report.sections for fig in section.figures]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wattwise.report", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = _md
    env.filters["urlpath"] = _urlpath
    env.filters["is_number"] = lambda cell: bool(_NUMBER.match(str(cell)))
    return env


def render(
    report: Report, fmt: ReportFormat | str = ReportFormat.HTML, *, files_dir: str = "report_files"
) -> str:
    """The report as text in the given format.

    Args:
        report: what to render.
        fmt: ``html`` (self-contained, plots inline) or ``md``.
        files_dir: Markdown only: the folder, relative to the ``.md``, its plots are linked
            from (``files_dir/chart-N.png``, N counting from 1 over the whole report);
            :func:`write_report` writes them there.
    """
    fmt = ReportFormat(fmt)
    template = "report.html.j2" if fmt is ReportFormat.HTML else "report.md.j2"
    return _environment().get_template(template).render(report=report, files_dir=files_dir)


def write_report(report: Report, path: str | Path, fmt: ReportFormat | str | None = None) -> Path:
    """Write the report; the format comes from ``fmt`` or the file's suffix.

    A Markdown report's plots go to PNG files in ``<stem>_files/`` beside it (charts left
    there by an earlier report of the same name are removed); HTML is one file.

    Raises:
        ConfigError: the format cannot be told, or the file cannot be written.
    """
    path = Path(path)
    if fmt is None:
        suffix = path.suffix.lower().lstrip(".")
        if suffix in ("html", "htm"):
            fmt = ReportFormat.HTML
        elif suffix in ("md", "markdown"):
            fmt = ReportFormat.MD
        else:
            raise ConfigError(f"cannot tell the report format from {path.name!r}: use --format")
    fmt = ReportFormat(fmt)
    files_dir = _files_dir_for(path)
    text = render(report, fmt, files_dir=files_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt is ReportFormat.MD:
            _write_charts(_charts(report), path.parent / files_dir)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from exc
    return path


def _write_charts(items: list[Chart], folder: Path) -> None:
    """``folder/chart-N.png`` for each chart; stale ``chart-*.png`` there are removed."""
    if not items and not folder.exists():
        return
    folder.mkdir(exist_ok=True)
    for old in folder.glob("chart-*.png"):
        old.unlink()
    for n, chart in enumerate(items, start=1):
        (folder / f"chart-{n}.png").write_bytes(chart.png)
