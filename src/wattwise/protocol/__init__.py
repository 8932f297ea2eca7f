"""The measurement protocol and the lever context: how every lever measures.

- :class:`Protocol`: repeats, warm-up, window length, order, cool-down (one spec for all);
- :func:`measure` / :func:`measure_calls`: named callables measured under it, each repeat a
  tracker window, returned as typed :class:`Repeated` measurements with their spread;
  :func:`warm_up` for work measured another way (a request queue, a search);
- :class:`LeverContext`: meters, store, scope and progress, given once to every lever;
- :func:`tracking`: the one "use the running tracker, else own one" rule;
- :func:`study_session`: the one place a lever's study reaches the store;
- statistics of repeats: :func:`summarize`, :func:`compare`.
"""

from wattwise.protocol._context import (
    METER_SPECS,
    LeverContext,
    MetersFactory,
    Progress,
    StoreArg,
    meters_from_spec,
    tracking,
)
from wattwise.protocol._measure import Measurement, Repeated, measure, measure_calls, warm_up
from wattwise.protocol._session import StudySession, study_session
from wattwise.protocol._spec import ORDERS, Protocol, schedule
from wattwise.protocol._stats import TESTS, Comparison, Summary, compare, min_p_value, summarize

__all__ = [
    "METER_SPECS",
    "ORDERS",
    "TESTS",
    "Comparison",
    "LeverContext",
    "Measurement",
    "MetersFactory",
    "Progress",
    "Protocol",
    "Repeated",
    "StoreArg",
    "StudySession",
    "Summary",
    "compare",
    "measure",
    "measure_calls",
    "meters_from_spec",
    "min_p_value",
    "schedule",
    "study_session",
    "summarize",
    "tracking",
    "warm_up",
]
