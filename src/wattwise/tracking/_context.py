"""The tracker's context variables: the running tracker, the last run, the window path.

Each is per thread and per asyncio task (a :class:`contextvars.ContextVar`).
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, TypeVar

from wattwise._records import RunResult

if TYPE_CHECKING:
    from wattwise.tracking._tracker import Tracker

__all__ = ["current_tracker", "last_run"]

log = logging.getLogger("wattwise")

_V = TypeVar("_V")

_current: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar(
    "wattwise_tracker", default=None
)
_last_run: contextvars.ContextVar[RunResult | None] = contextvars.ContextVar(
    "wattwise_last_run", default=None
)
_window_path: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "wattwise_window_path", default=()
)


def _reset(var: contextvars.ContextVar[_V], token: contextvars.Token[_V]) -> None:
    """Undo ``var.set``; a generator finalised in another context (by the garbage collector,
    or by asyncio's async generator hooks in a new task) cannot, and need not: that context
    never saw the value."""
    try:
        var.reset(token)
    except ValueError:
        log.debug("wattwise: a context variable was reset from another context")


def current_tracker() -> Tracker | None:
    """The tracker of the innermost running ``track()`` block in this context, if any."""
    return _current.get()


def last_run() -> RunResult | None:
    """The result of the last run stopped in this context, if any.

    "This context" is this thread, or this asyncio task: what a call of a function decorated
    with :func:`track` measured is read right after it returns, in the same thread or task,
    even while other threads or tasks run decorated functions of their own::

        @wattwise.track
        def predict(batch): ...

        predict(batch)
        energy_j = wattwise.last_run().energy_j

    A decorated call made inside another running tracker records a window of that run (see
    :func:`track`), not a run, and leaves this unchanged; a coroutine run as its own task
    (``asyncio.gather``, ``create_task``) sets it in that task: call ``last_run()`` there, or
    use ``with track(...) as t`` and ``t.result``.
    """
    return _last_run.get()
