"""Reports for runs, studies and the demo: self-contained HTML, or Markdown with its plots as
PNG files beside it."""

from wattwise.report._document import Chart, Figure, Report, Section, Table
from wattwise.report._embodied import embodied_section
from wattwise.report._plots import TIMELINE_POINTS
from wattwise.report._render import ReportFormat, render, write_report
from wattwise.report._runs import compare_table, run_sections
from wattwise.report._studies import study_sections
from wattwise.report._training import find_training_history, training_sections

__all__ = [
    "TIMELINE_POINTS",
    "Chart",
    "Figure",
    "Report",
    "ReportFormat",
    "Section",
    "Table",
    "compare_table",
    "embodied_section",
    "find_training_history",
    "render",
    "run_sections",
    "study_sections",
    "training_sections",
    "write_report",
]
