"""A report as data: sections of text, tables and figures, rendered to HTML or Markdown.

Builders (runs, studies, the demo) produce a :class:`Report`; the renderers in
``_render.py`` turn it into a self-contained file. Keeping the two apart lets every builder
get both formats, and keeps all escaping in one place (the template engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Report", "Section", "Table"]


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
class Figure:
    """A plot as inline SVG.

    Attributes:
        svg: the ``<svg>...</svg>`` markup produced by matplotlib (trusted: text is drawn as
            paths, so no user text reaches the markup).
        caption: what the figure shows, including where its figures come from.
    """

    svg: str
    caption: str


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
