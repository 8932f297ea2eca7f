"""Render a :class:`Report` to a self-contained HTML page or Markdown file (jinja2).

HTML autoescaping is on: every string a user gave (run names, model names, paths) is
escaped; only the SVG of the figures, which matplotlib produced with text as paths, is
inserted as markup. Markdown escapes the characters that would start markup or break a
table.
"""

from __future__ import annotations

import base64
import enum
import re
from pathlib import Path

import jinja2

from wattwise._errors import ConfigError
from wattwise.report._document import Report

__all__ = ["ReportFormat", "render", "write_report"]


class ReportFormat(enum.StrEnum):
    """Formats a report can be written in."""

    HTML = "html"
    MD = "md"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
_NUMBER = re.compile(r"^[-+]?[\d.,]+(\s?[a-zA-Z%/]+)?$")


def _md(text: object) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


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
    env.filters["b64"] = _b64
    env.filters["is_number"] = lambda cell: bool(_NUMBER.match(str(cell)))
    return env


def render(report: Report, fmt: ReportFormat | str = ReportFormat.HTML) -> str:
    """The report as text in the given format."""
    fmt = ReportFormat(fmt)
    template = "report.html.j2" if fmt is ReportFormat.HTML else "report.md.j2"
    return _environment().get_template(template).render(report=report)


def write_report(report: Report, path: str | Path, fmt: ReportFormat | str | None = None) -> Path:
    """Write the report; the format comes from ``fmt`` or the file's suffix.

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
    text = render(report, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from exc
    return path
