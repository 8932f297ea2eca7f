"""Journals left by a process that ended: written to the store by a later process.

A tracker that cannot write the store spills samples to ``<journal dir>/<run id>.jsonl``
(``_journal.py``) and replays them itself when the store is back. A process that dies first
(killed, crashed, the machine rebooted) leaves its journal: :func:`recover_journals` writes
it, when a tracker starts (:func:`recover_at_start`) and from ``wattwise runs recover``.

A journal is replayed only when its run's process can no longer write it: the run's row is
final, or its process is gone on this host (the store's rule, pid and create time:
:mod:`wattwise.store._liveness`), or it is this process and its tracker ended (a run that
ended while the store was down, in a process that goes on to start another). A run tracked
on another host is left to that host, which can tell; a journal whose run is not in the
store is kept, never deleted.

Every complete line is one batch, written in order, each in one transaction. The journal
holds no mark of what reached the store (its replay's progress is in the tracker's memory):
the store tells instead, a sample being identified by its component and interval, so a
batch that committed before the process died is not written twice, and replaying a journal
again writes nothing. A last line cut short by the crash is ignored (and reported). The
journal is then removed; a complete line that is not a batch of samples leaves it renamed
``<run id>.jsonl.damaged`` once the rest is written, and a store that fails mid-way leaves
it as it is, to be replayed next time. The run's totals need no writing: an interrupted
run's are summed from its samples when it is read, which now include the journal's, and its
heartbeat is moved up to the last sample, so that its duration covers them.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wattwise._errors import RunNotFound, WattwiseError
from wattwise._records import Sample, host_identity
from wattwise.tracking._journal import default_journal_dir, journal_in_use, parse_batch

if TYPE_CHECKING:
    # Type-only: the store's answer (tracking never imports the store; import-linter skips it).
    from wattwise.store import RunProcess

__all__ = [
    "DAMAGED_SUFFIX",
    "PROBLEMS",
    "JournalReplay",
    "JournalStore",
    "ReplayOutcome",
    "recover_at_start",
    "recover_journals",
]

#: What a journal with a damaged line is renamed to end with, once the rest is written.
DAMAGED_SUFFIX = ".damaged"


@runtime_checkable
class JournalStore(Protocol):
    """What replaying a journal needs of the store (:class:`~wattwise.store.RunStore`)."""

    def run_process(self, run_id: str) -> RunProcess | None: ...

    def missing_samples(self, run_id: str, samples: Sequence[Sample]) -> list[Sample]: ...

    def add_late_samples(self, run_id: str, samples: Sequence[Sample]) -> int: ...


class ReplayOutcome(enum.StrEnum):
    """What became of one journal."""

    REPLAYED = "replayed"  # written (what the store lacked) and removed
    WOULD_REPLAY = "would-replay"  # a dry run: what would be written, nothing done
    LIVE = "live"  # its process still writes the run: left to it
    ELSEWHERE = "elsewhere"  # tracked on another host, which can tell: left alone
    UNKNOWN_RUN = "unknown-run"  # no such run in this store: kept
    FAILED = "failed"  # the store failed mid-way: kept as it is, for next time
    DAMAGED = "damaged"  # a complete line is no batch: the rest written, kept renamed
    GONE = "gone"  # removed meanwhile: another process replayed it


#: Outcomes that leave samples on disk which nothing will write by itself.
PROBLEMS = frozenset({ReplayOutcome.FAILED, ReplayOutcome.DAMAGED})


@dataclass(frozen=True)
class JournalReplay:
    """One journal and what its replay did.

    Attributes:
        path: the journal file.
        run_id: its run (the file's name).
        outcome: what became of it.
        batches: complete lines read (batches of samples).
        samples_written: samples written to the store (a dry run: that would be).
        samples_stored_already: samples of it the store held already (not written again).
        torn_bytes: bytes of a last line cut short by a crash, ignored (0: none).
        damaged_lines: line numbers (from 1) of complete lines that are no batch.
        kept_as: where the journal is now; None once removed.
        host: the host that tracked the run, when known.
        error: why the store failed (``failed``), else None.
    """

    path: Path
    run_id: str
    outcome: ReplayOutcome
    batches: int = 0
    samples_written: int = 0
    samples_stored_already: int = 0
    torn_bytes: int = 0
    damaged_lines: tuple[int, ...] = ()
    kept_as: Path | None = None
    host: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``wattwise runs recover --json``)."""
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            "outcome": self.outcome.value,
            "batches": self.batches,
            "samples_written": self.samples_written,
            "samples_stored_already": self.samples_stored_already,
            "torn_bytes": self.torn_bytes,
            "damaged_lines": list(self.damaged_lines),
            "kept_as": str(self.kept_as) if self.kept_as is not None else None,
            "host": self.host,
            "error": self.error,
        }

    def describe(self) -> str:
        """One line for the user (plain text, not markup)."""
        run, path = self.run_id, self.path
        counts = (
            f"{self.samples_written:,} samples of its {self.batches:,} batches written to the "
            f"store ({self.samples_stored_already:,} were there already)"
        )
        torn = (
            f"; its last line, cut short by the crash ({self.torn_bytes:,} bytes), was ignored"
            if self.torn_bytes
            else ""
        )
        match self.outcome:
            case ReplayOutcome.REPLAYED:
                return (
                    f"replayed {path}, left by run {run}'s process that ended: {counts}{torn}; "
                    f"removed"
                )
            case ReplayOutcome.WOULD_REPLAY:
                return (
                    f"would replay {path} of run {run}: {self.samples_written:,} samples of "
                    f"its {self.batches:,} batches to write ({self.samples_stored_already:,} "
                    f"in the store already){torn}"
                )
            case ReplayOutcome.LIVE:
                return f"left {path} alone: run {run}'s process still runs and replays it itself"
            case ReplayOutcome.ELSEWHERE if self.host == host_identity():
                return f"left {path} alone: run {run}'s process is not known, so it may be live"
            case ReplayOutcome.ELSEWHERE:
                return (
                    f"left {path} alone: run {run} was tracked on host {self.host}, which alone "
                    f"can tell whether its process lives; run `wattwise runs recover` there"
                )
            case ReplayOutcome.UNKNOWN_RUN:
                return (
                    f"kept {path}: this store has no run {run} (recover it into the store it "
                    f"was recorded in: `wattwise runs recover --store URL`)"
                )
            case ReplayOutcome.FAILED:
                return f"kept {path} to replay again later: {self.error} (so far {counts})"
            case ReplayOutcome.GONE:
                return f"{path} was replayed by another process meanwhile"
            case ReplayOutcome.DAMAGED:
                lines = ", ".join(str(n) for n in self.damaged_lines)
                return (
                    f"replayed {path} of run {run} but for line(s) {lines}, which hold no "
                    f"samples: {counts}{torn}; kept as {self.kept_as}"
                )


def recover_journals(
    store: JournalStore, journal_dir: Path | None = None, *, dry_run: bool = False
) -> list[JournalReplay]:
    """Replay the journals in ``journal_dir`` whose run's process can no longer write them.

    Args:
        store: the store the runs were recorded in (it must take writes, unless ``dry_run``).
        journal_dir: where the journals are (None: :func:`default_journal_dir`); a missing
            directory holds none.
        dry_run: only read: say what would be written, change nothing (store nor files).

    Returns:
        One entry per journal (``*.jsonl``), by file name.

    Raises:
        StoreError: the store cannot tell whether a run exists (unreachable, say).
    """
    directory = journal_dir if journal_dir is not None else default_journal_dir()
    if not directory.is_dir():
        return []
    paths = sorted(p for p in directory.glob("*.jsonl") if p.is_file())
    return [_recover(store, p, dry_run=dry_run) for p in paths]


def recover_at_start(
    sink: object, journal_dir: Path | None, warn: Callable[[str], None]
) -> list[JournalReplay]:
    """What a tracker does as it starts: replay the journals left by processes that ended
    into its store (when ``sink`` is one; a store's failure is a warning, never an error).
    Each journal replayed, or kept for damage or a failed write, is one warning. One left to
    its live process, to another host, or whose run this store does not hold is not: a user
    with several stores shares one journal directory, and a journal of another store's run
    would otherwise warn at every start (``wattwise runs recover --store URL`` reports it)."""
    if not isinstance(sink, JournalStore):
        return []
    directory = journal_dir if journal_dir is not None else default_journal_dir()
    try:
        if not any(directory.glob("*.jsonl")):  # the usual case: a directory listing, no query
            return []
        replays = recover_journals(sink, directory)
    except (OSError, WattwiseError) as exc:
        warn(f"the journals in {directory} left by processes that ended were not replayed: {exc}")
        return []
    quiet = {
        ReplayOutcome.LIVE,
        ReplayOutcome.ELSEWHERE,
        ReplayOutcome.GONE,
        ReplayOutcome.UNKNOWN_RUN,
    }
    for replay in replays:
        if replay.outcome not in quiet:
            warn(replay.describe())
    return replays


@dataclass
class _Tally:
    batches: int = 0
    written: int = 0
    already: int = 0
    torn_bytes: int = 0
    damaged: list[int] = field(default_factory=list)


def _recover(store: JournalStore, path: Path, *, dry_run: bool) -> JournalReplay:
    run_id = path.name.removesuffix(".jsonl")
    process = store.run_process(run_id)
    if process is None:
        return JournalReplay(path, run_id, ReplayOutcome.UNKNOWN_RUN, kept_as=path)
    writing = process.writing
    if writing and process.pid == os.getpid():  # this very process: its trackers tell
        writing = journal_in_use(run_id)
    if writing is not False:
        outcome = ReplayOutcome.LIVE if writing else ReplayOutcome.ELSEWHERE
        return JournalReplay(path, run_id, outcome, kept_as=path, host=process.host)
    tally = _Tally()

    def replay(outcome: ReplayOutcome, kept_as: Path | None, error: str | None) -> JournalReplay:
        return JournalReplay(
            path,
            run_id,
            outcome,
            batches=tally.batches,
            samples_written=tally.written,
            samples_stored_already=tally.already,
            torn_bytes=tally.torn_bytes,
            damaged_lines=tuple(tally.damaged),
            kept_as=kept_as,
            host=process.host,
            error=error,
        )

    try:
        for batch in _batches(path, tally):
            if dry_run:
                new = len(store.missing_samples(run_id, batch))
            else:
                new = store.add_late_samples(run_id, batch)
            tally.batches += 1
            tally.written += new
            tally.already += len(batch) - new
    except RunNotFound:  # deleted meanwhile
        return replay(ReplayOutcome.UNKNOWN_RUN, path, None)
    except FileNotFoundError:
        if tally.batches:
            return replay(ReplayOutcome.FAILED, path, "the journal vanished while read")
        return replay(ReplayOutcome.GONE, None, None)
    except (OSError, WattwiseError) as exc:
        return replay(ReplayOutcome.FAILED, path, _reason(exc))
    if dry_run:
        return replay(ReplayOutcome.WOULD_REPLAY, path, None)
    try:
        if tally.damaged:
            kept = path.with_name(path.name + DAMAGED_SUFFIX)
            path.replace(kept)
            return replay(ReplayOutcome.DAMAGED, kept, None)
        path.unlink(missing_ok=True)
    except OSError as exc:
        return replay(ReplayOutcome.FAILED, path, f"written, but not removed: {_reason(exc)}")
    return replay(ReplayOutcome.REPLAYED, None, None)


def _batches(path: Path, tally: _Tally) -> Iterator[list[Sample]]:
    """The journal's complete lines as batches, in order; a torn last line and damaged
    lines are counted in ``tally``."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                tally.torn_bytes = len(raw)  # only the last line can lack its newline
                return
            try:
                batch = parse_batch(raw)
            except ValueError:
                tally.damaged.append(number)
                continue
            if batch:
                yield batch


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
