"""A report as data: sections of text, tables and figures, rendered to HTML or Markdown.

Builders (runs, studies, the demo) produce a :class:`Report`; the renderers in
``_render.py`` turn it into a self-contained file. Keeping the two apart lets every builder
get both formats, and keeps all escaping in one place (the template engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chart", "Figure", "Report", "Section", "Table"]


@dataclass(frozen=True)
class Table:
    """A table of already-formatted cells.

    Attributes:
        columns: header cells.
        rows: rows of cells (strings; the renderer escapes them).
        caption: one line under the table, or "".
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Chart:
    """One plot, drawn twice by matplotlib: as SVG (inline in HTML) and as PNG (a file
    beside a Markdown report, which GitHub and most viewers show, unlike ``data:`` URIs).

    Attributes:
        svg: the ``<svg>...</svg>`` markup (trusted: text is drawn as paths, so no user
            text reaches the markup).
        png: the same plot as PNG bytes.
    """

    svg: str
    png: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class Figure:
    """A plot with its caption.

    Attributes:
        chart: the plot (see :mod:`wattwise.report._plots`).
        caption: what the figure shows, including where its figures come from.
    """

    chart: Chart
    caption: str

    @property
    def svg(self) -> str:
        """The plot's SVG markup."""
        return self.chart.svg


@dataclass(frozen=True)
class Section:
    """A titled part of a report.

    Attributes:
        title: the heading.
        paragraphs: plain-text paragraphs (escaped on rendering).
        tables: tables, shown after the paragraphs.
        figures: figures, shown after the tables.
    """

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()


@dataclass(frozen=True)
class Report:
    """A whole report.

    Attributes:
        title: the page title.
        subtitle: one line under it (what, when, where).
        sections: the body.
        meta: JSON-ready facts about how it was made (version, store, ids).
    """

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    meta: dict[str, Any] = field(default_factory=dict)
