"""Riding out a run store that cannot be written: samples held in memory up to a bound,
then in a local journal file, written to the store when it is back.

The flusher hands every batch to an :class:`Outbox`. While the store takes writes, the
outbox writes at once. When a write fails the user is told once (a warning), and what the
outbox holds grows: past ``StoreOutage.held_samples`` samples, the held samples are
appended to the run's journal, ``<user data dir>/wattwise/journal/<run id>.jsonl`` (one
JSON line per spilled batch, flushed and fsync'd, so a crash leaves every complete line).
When a write succeeds again, the journal is replayed first, oldest batch first, each in one
store transaction, then what memory holds; the user is told the store is back. So nothing
is lost, nothing is written twice (a batch leaves the journal only once its transaction
committed), and the store keeps the samples in the order they were taken. Memory stays
bounded by the bound, however long the outage. A journal left by a process that died
before the store was back is written by a later process (``_orphans.py``).

Gaps and closed windows are few (not one per sample): they stay held in memory. Windows
are written before samples: both a window and a gap are upserts, so writing one again
after a failure changes nothing; samples are appended, in one transaction with the gaps.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import platformdirs

from wattwise._records import Gap, Sample, WindowResult
from wattwise.tracking._sink import RunSink

__all__ = [
    "DEFAULT_HELD_SAMPLES",
    "JOURNAL_DIR_ENV",
    "Journal",
    "Outbox",
    "StoreOutage",
    "default_journal_dir",
    "format_batch",
    "journal_in_use",
    "parse_batch",
]

#: Samples held in memory while the store is unreachable, before they spill to the journal:
#: ~16 MB, 75 minutes of 11 components at 1 Hz.
DEFAULT_HELD_SAMPLES = 50_000


#: Environment variable naming the journal directory (a node-local disk on a cluster whose
#: home directories are shared, say).
JOURNAL_DIR_ENV = "WATTWISE_JOURNAL_DIR"


def default_journal_dir() -> Path:
    """``$WATTWISE_JOURNAL_DIR``, else ``<user data dir>/wattwise/journal``: beside the
    default run store."""
    named = os.environ.get(JOURNAL_DIR_ENV)
    if named:
        return Path(named)
    return Path(platformdirs.user_data_dir("wattwise")) / "journal"


def format_batch(samples: Sequence[Sample]) -> bytes:
    """One journal line: a JSON list of ``[component, t_start_s, t_end_s, energy_j, note]``."""
    rows = [[s.component, s.t_start_s, s.t_end_s, s.energy_j, s.note] for s in samples]
    return (json.dumps(rows, separators=(",", ":")) + "\n").encode("utf-8")


def parse_batch(line: bytes) -> list[Sample]:
    """The samples of one complete journal line.

    Raises:
        ValueError: the line is not a batch of samples.
    """
    try:
        rows = json.loads(line)
        batch = [Sample(str(c), float(t0), float(t1), e, n) for c, t0, t1, e, n in rows]
    except (TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeError included
        raise ValueError(f"not a batch of samples: {exc}") from exc
    for x in batch:
        if not (x.energy_j is None or isinstance(x.energy_j, int | float)) or not (
            x.note is None or isinstance(x.note, str)
        ):
            raise ValueError(f"not a sample: {x}")
    return batch


@dataclass(frozen=True)
class StoreOutage:
    """How a tracker rides out a run store that cannot be written.

    Attributes:
        held_samples: the most samples held in memory; past it they spill to the journal.
        journal_dir: where the journal files go (None: :func:`default_journal_dir`).
    """

    held_samples: int = DEFAULT_HELD_SAMPLES
    journal_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.held_samples < 1:
            raise ValueError(f"held_samples must be >= 1, got {self.held_samples}")


class Journal:
    """One run's samples not written to the store yet, in an append-only JSON-lines file.

    Args:
        path: the file (created, with its directory, on the first :meth:`append`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unsent = 0  # samples in the file not written to the store yet
        self._offset = 0  # bytes of the file already written to the store

    def append(self, samples: Sequence[Sample]) -> None:
        """Add a batch at the end, durably (flushed and fsync'd)."""
        if not samples:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(format_batch(samples))
            f.flush()
            os.fsync(f.fileno())
        self.unsent += len(samples)

    def replay(self, write: Callable[[list[Sample]], None]) -> int:
        """Write the batches not written yet, oldest first, with ``write`` (one call each).

        A batch counts as written only when ``write`` returned; the first that raises stops
        the replay (the exception goes on) and is tried again next time. Once every batch is
        written the file is removed. Returns the samples written.
        """
        if self.unsent == 0:
            return 0
        written = 0
        with self.path.open("rb") as f:
            f.seek(self._offset)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a line cut short by a crash: never a complete batch
                batch = parse_batch(raw)
                write(batch)
                self._offset += len(raw)
                self.unsent -= len(batch)
                written += len(batch)
        self.path.unlink(missing_ok=True)
        self._offset, self.unsent = 0, 0
        return written


def journal_in_use(run_id: str) -> bool:
    """Whether a tracker of this process may still write or replay the run's journal: its
    outbox exists and the run has not ended (:meth:`Outbox.keep`)."""
    return any(o.run_id == run_id and not o.ended for o in list(_outboxes))


class Outbox:
    """What the flusher has not written to the store yet, and how it gets there.

    Args:
        sink: the store.
        run_id: the run.
        policy: the in-memory bound and the journal's directory.
        warn: tells the user (the tracker's warning path).
        now: the time of a heartbeat.
    """

    def __init__(
        self,
        sink: RunSink,
        run_id: str,
        policy: StoreOutage,
        *,
        warn: Callable[[str], None],
        now: Callable[[], datetime],
    ) -> None:
        self._sink = sink
        self.run_id = run_id
        self.ended = False  # the run ended: nothing in this process writes its journal now
        self._policy = policy
        self._warn = warn
        self._now = now
        directory = policy.journal_dir if policy.journal_dir is not None else default_journal_dir()
        self.journal = Journal(directory / f"{run_id}.jsonl")
        self._samples: list[Sample] = []
        self._gaps: list[Gap] = []
        self._windows: list[WindowResult] = []
        self._down_since: datetime | None = None
        self.written_samples = 0  # samples this outbox wrote to the store
        _outboxes.add(self)

    @property
    def held_samples(self) -> int:
        """Samples held in memory now (at most the bound, between two flushes' batches)."""
        return len(self._samples)

    def send(
        self, samples: Sequence[Sample], gaps: Sequence[Gap], windows: Sequence[WindowResult]
    ) -> None:
        """Write these after everything held before them; hold them when the store fails.

        Raises:
            Exception: whatever the store raised (what it did not take is held).
        """
        self._samples.extend(samples)
        self._gaps.extend(gaps)
        self._windows.extend(windows)
        try:
            late = self._write_all()
        except Exception as exc:
            self._failed(exc)
            raise
        if self._down_since is not None:
            since, self._down_since = self._down_since, None
            self._warn(
                f"the run store takes writes again (it could not since "
                f"{since:%Y-%m-%d %H:%M:%S} UTC): the {late:,} samples held meanwhile are "
                f"written to it, none lost"
            )

    def keep(self) -> int:
        """Put every sample still held into the journal (the run ends with the store
        unreachable); returns how many samples the journal holds."""
        self.journal.append(self._samples)
        self._samples = []
        self.ended = True
        return self.journal.unsent

    def _write_all(self) -> int:
        late = self.journal.replay(self._append) + len(self._samples)
        while self._windows:  # upserts: one written again after a failure changes nothing
            self._sink.add_window(self.run_id, self._windows[0])
            self._windows.pop(0)
        self._sink.append(
            self.run_id, samples=self._samples, gaps=self._gaps, heartbeat_at=self._now()
        )
        self.written_samples += len(self._samples)
        self._samples, self._gaps = [], []
        return late

    def _append(self, samples: list[Sample]) -> None:
        self._sink.append(self.run_id, samples=samples, gaps=(), heartbeat_at=self._now())
        self.written_samples += len(samples)

    def _failed(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = self._now()
            self._warn(
                f"the run store cannot be written ({exc}): the run goes on; its samples are "
                f"held in memory (up to {self._policy.held_samples:,}), then in "
                f"{self.journal.path}, and written to the store when it is back"
            )
        if len(self._samples) > self._policy.held_samples:
            self.journal.append(self._samples)
            self._samples = []


# The outboxes of this process's trackers (a tracker dropped takes its outbox with it).
_outboxes: weakref.WeakSet[Outbox] = weakref.WeakSet()
