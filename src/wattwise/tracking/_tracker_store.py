"""A tracker's run in the store: the sink it writes to, the flusher, the result at the end.

The tracker (``_tracker.py``) holds the order of its life; this module holds its store side:
which sink a ``store=`` argument means (and whether the tracker opened it, and so closes it),
the flusher handing the ledger's new samples to the outbox (``_journal.py``: held in memory,
then in a journal file, while the store cannot be written), and the result stored at the
end, or kept in the journal when the store is still out.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from wattwise._errors import WattwiseError
from wattwise._records import RunAllocation, RunResult, Scope, host_identity
from wattwise.meters._base import Component
from wattwise.tracking._clock import Clock, Ticker
from wattwise.tracking._journal import Outbox, StoreOutage
from wattwise.tracking._ledger import RunLedger
from wattwise.tracking._members import Membership
from wattwise.tracking._sink import ClosableSink, RunSink, _defaults, _wired

__all__ = ["begin_run", "flush", "flush_loop", "open_sink", "store_result"]

log = logging.getLogger("wattwise")


def open_sink(store: RunSink | str | bool | None) -> tuple[RunSink | None, ClosableSink | None]:
    """The sink ``store`` means (``False``: none; None, True or a URL: the run store, opened
    here) and the store opened here, which its tracker closes when it stops (else None)."""
    if store is False:
        return None, None
    if store is None or store is True or isinstance(store, str):
        url = store if isinstance(store, str) else None
        opened = _wired(_defaults.open_store)(url)
        return opened, opened
    return store, None


@dataclass(frozen=True)
class RunOpening:
    """What the store records of a run as it starts, whether it begins alone or joins a run
    with members (``_tracker_members.py``).

    Attributes:
        run_id: the tracker's own id for the run.
        name: the run's name.
        scope: ``machine`` or ``process``.
        command: the command line, when the run wraps a command.
        components: what the meters measure.
        baseline_power_w: idle power of the counted components, in W (None: no baseline).
        allocation: the machine's share the run holds (for its embodied carbon).
    """

    run_id: str
    name: str
    scope: Scope
    command: tuple[str, ...] | None
    components: Sequence[Component]
    baseline_power_w: float | None
    allocation: RunAllocation | None


def begin_run(
    sink: RunSink,
    outage: StoreOutage,
    opening: RunOpening,
    joined: Membership | None,
    started_at: datetime,
    clock: Clock,
    warn: Callable[[str], None],
) -> Outbox:
    """Record the run's start (a member that ``joined`` a run was recorded by the join)
    and return the outbox its samples go through, under the run's final id (a member's is
    the one the join gave it)."""
    if joined is not None:
        return Outbox(sink, joined.run_id, outage, warn=warn, now=clock.now)
    sink.begin_run(
        run_id=opening.run_id,
        name=opening.name,
        scope=opening.scope,
        started_at=started_at,
        host=host_identity(),
        pid=os.getpid(),
        command=opening.command,
        components=opening.components,
        baseline_power_w=opening.baseline_power_w,
        allocation=opening.allocation,
    )
    return Outbox(sink, opening.run_id, outage, warn=warn, now=clock.now)


def flush(ledger: RunLedger, lock: threading.RLock, outbox: Outbox) -> None:
    """Hand what the ledger has not sent to the outbox, which writes it (after what it
    held) or holds it: in memory, past a bound in a journal file (tracking/_journal.py)."""
    with lock:
        samples, gaps, windows = ledger.take_pending()
    outbox.send(samples, gaps, windows)


def flush_loop(ticker: Ticker, flush_now: Callable[[], None]) -> None:
    """The flusher thread: ``flush_now`` at every tick until the ticker stops."""
    while not ticker.wait():
        try:
            flush_now()
        except Exception:  # the outbox held it and told the user once
            log.debug("wattwise: could not write samples to the store yet", exc_info=True)


def store_result(
    sink: RunSink,
    outbox: Outbox,
    result: RunResult,
    *,
    flush_now: Callable[[], None],
    warn: Callable[[str], None],
) -> None:
    """Write the last samples and the run's result; when the store refuses, warn and keep
    the samples it did not take in the journal (replayed into it later, tracking/_orphans.py)."""
    try:
        flush_now()
        # The samples were streamed by the flusher; the result's are its bounded
        # timeline (tracking/_timeline.py), which the store keeps for reports.
        sink.finish_run(result)
    except WattwiseError as exc:
        kept = outbox.keep()
        path = outbox.journal.path
        note = f"; its {kept:,} samples not stored are kept in {path}" if kept else ""
        warn(f"the run could not be stored: {exc}{note}")
