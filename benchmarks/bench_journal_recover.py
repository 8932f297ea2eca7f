"""How long replaying a dead process's outage journal takes (issue 17 leftover).

A run of ``--stored`` samples (10 components at 1 Hz) is recorded in a store, its tracking
process is a real process that has exited, and its journal holds ``--journalled`` more
samples in batches of ``--batch`` (what a tracker spills: every ``held_samples``). Measured:
the wall time of :func:`wattwise.tracking.recover_journals` over it (each batch: the check
of what the store holds, in the batch's span, and the insert, in one transaction), and of a
second recovery of a copy of the same journal, which finds everything stored and writes
nothing. A figure, not a goal: a tracker's start takes this long once after such a crash.

``--store`` names the store (default: a SQLite file in a temporary directory); a
``postgresql://`` URL measures PostgreSQL (an empty database). ``--json F`` writes the
figures.

Run:  python benchmarks/bench_journal_recover.py [--stored 1000000] [--journalled 500000]
      [--batch 50000] [--store URL] [--json F]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wattwise._records import Sample, Scope, host_identity
from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.store import RunStore
from wattwise.tracking import ReplayOutcome, recover_journals
from wattwise.tracking._journal import Journal

COMPONENTS = 10


def _samples(first_s: int, seconds: int) -> list[Sample]:
    return [
        Sample(f"c{c}", float(t), t + 1.0, 1.0)
        for t in range(first_s, first_s + seconds)
        for c in range(COMPONENTS)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--journalled", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--store", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or str(Path(tmp) / "runs.sqlite")
        exited = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = "b" * 32
        source = Source(Method.MEASURED, "benchmark")
        comps = [Component(f"c{c}", ComponentKind.CPU, source) for c in range(COMPONENTS)]
        with RunStore.open(url) as store:
            store.begin_run(
                run_id=run_id,
                name="killed in an outage",
                scope=Scope.MACHINE,
                started_at=datetime.now(UTC),
                host=host_identity(),
                pid=int(exited.stdout),
                command=None,
                components=comps,
                baseline_power_w=None,
            )
            seconds, step = args.stored // COMPONENTS, 10_000
            for first in range(0, seconds, step):
                store.append(
                    run_id,
                    samples=_samples(first, min(step, seconds - first)),
                    gaps=(),
                    heartbeat_at=datetime.now(UTC),
                )
            journal_dir = Path(tmp) / "journal"
            journal = Journal(journal_dir / f"{run_id}.jsonl")
            per_batch = args.batch // COMPONENTS
            for first in range(seconds, seconds + args.journalled // COMPONENTS, per_batch):
                journal.append(_samples(first, per_batch))
            copy = Path(tmp) / "copy.jsonl"
            shutil.copy(journal.path, copy)

            t0 = time.perf_counter()
            (first_replay,) = recover_journals(store, journal_dir)
            replay_s = time.perf_counter() - t0
            shutil.copy(copy, journal.path)
            t0 = time.perf_counter()
            (again,) = recover_journals(store, journal_dir)
            again_s = time.perf_counter() - t0
    assert first_replay.outcome is ReplayOutcome.REPLAYED, first_replay
    assert again.samples_written == 0, again
    figures: dict[str, Any] = {
        "store": "postgresql" if url.startswith("postgresql") else "sqlite",
        "stored_samples": args.stored,
        "journalled_samples": first_replay.samples_written,
        "batches": first_replay.batches,
        "replay_s": round(replay_s, 2),
        "replay_again_s": round(again_s, 2),
        "samples_written_again": again.samples_written,
    }
    print(json.dumps(figures, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
