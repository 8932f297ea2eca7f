"""``wattwise demo``: the levers on bundled data, each measured against its baseline."""

from wattwise._extras import require as _require

_require("wattwise.demo", "demo", None)

from wattwise.demo._records import DemoSettings, Headline, LeverOutcome, Unit
from wattwise.demo._run import DemoResult, run_demo, savings_table

__all__ = [
    "DemoResult",
    "DemoSettings",
    "Headline",
    "LeverOutcome",
    "Unit",
    "run_demo",
    "savings_table",
]
