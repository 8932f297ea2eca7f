"""``wattwise runs recover``: write the journals left by processes that ended into the store.

Registered on the ``runs`` group (``cli/_runs.py``) when ``wattwise.cli`` imports this
module. The replay itself is ``wattwise.tracking._orphans``'s (a tracker also runs it as it
starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wattwise._errors import StoreNotFound
from wattwise.cli._common import console, fail, print_json
from wattwise.cli._runs import JsonOpt, StoreOpt, runs_app
from wattwise.store import RunStore
from wattwise.tracking._journal import JOURNAL_DIR_ENV, default_journal_dir
from wattwise.tracking._orphans import PROBLEMS, JournalReplay, ReplayOutcome, recover_journals

__all__ = ["recover_runs"]

#: Exit status when a journal could not be replayed whole (the store failed, a damaged line).
EXIT_NOT_ALL = 1


@runs_app.command("recover")
def recover_runs(
    journal_dir: Annotated[
        Path | None,
        typer.Option(
            help=f"Where the journals are (default: {JOURNAL_DIR_ENV}, else wattwise/journal "
            "in the user data directory)."
        ),
    ] = None,
    store: StoreOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be written; write nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write the samples a run spilled to its outage journal when its process died before
    the store was back; leave live runs' journals alone and keep those of unknown runs."""
    directory = journal_dir if journal_dir is not None else default_journal_dir()
    if journal_dir is not None and not journal_dir.is_dir():
        what = "is not a directory" if journal_dir.exists() else "does not exist"
        fail(f"journal directory {journal_dir} {what}: give the directory the journals are in")
    if not directory.is_dir() or not any(directory.glob("*.jsonl")):
        if json_out:
            print_json(
                {"journal_dir": str(directory), "store": None, "dry_run": dry_run, "journals": []}
            )
        else:
            console.print(f"no journals in {directory}: nothing to recover", markup=False)
        return
    try:
        RunStore.open(store, read_only=True).close()  # there, and of this version
    except StoreNotFound as exc:
        fail(f"{exc}: give the store the runs were recorded in with --store URL")
    with RunStore.open(store, read_only=dry_run) as st:
        replays = recover_journals(st, directory, dry_run=dry_run)
    if json_out:
        print_json(
            {
                "journal_dir": str(directory),
                "store": st.display_url,
                "dry_run": dry_run,
                "journals": [r.to_dict() for r in replays],
            }
        )
    else:
        _print(replays, st.display_url, dry_run=dry_run)
    if any(r.outcome in PROBLEMS for r in replays):
        raise typer.Exit(EXIT_NOT_ALL)


def _print(replays: list[JournalReplay], store: str, *, dry_run: bool) -> None:
    for replay in replays:
        console.print(replay.describe(), markup=False, highlight=False, soft_wrap=True)
    replayed = {ReplayOutcome.REPLAYED, ReplayOutcome.WOULD_REPLAY, ReplayOutcome.DAMAGED}
    verb = "would write" if dry_run else "wrote"
    console.print(
        f"{verb} {sum(r.samples_written for r in replays):,} samples from "
        f"{sum(r.outcome in replayed for r in replays)} of {len(replays)} journals into {store}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
