"""The run store: runs, their components, windows, gaps and power timeline, in SQL.

SQLite by default (one file, safe for several processes writing at once), PostgreSQL for
teams and clusters. Where the store lives is resolved in :meth:`RunStore.open`: the
argument, else the ``WATTWISE_STORE`` environment variable, else
``<user data dir>/wattwise/runs.sqlite``. A plain path is a SQLite file (a new one must end
in ``.sqlite``, ``.sqlite3``, ``.db`` or ``.db3``); ``postgresql://`` URLs use the psycopg (v3)
driver. ``RunStore.open(url, read_only=True)`` (what listing, showing, exporting and reporting
use) never creates nor writes the store: a missing one raises :class:`~wattwise.StoreNotFound`.

A run is written while it happens: :meth:`RunStore.begin_run` at the start,
:meth:`RunStore.append` every couple of seconds (samples, gaps and a heartbeat, in one
transaction), :meth:`RunStore.add_window` as phases close, :meth:`RunStore.finish_run` at the
end. A run whose row still says ``running`` but whose process is gone reads back as
``interrupted``, rebuilt from what was stored.

Layout: ``_base`` (the URL, the connection, run ids), ``_writes``, ``_reads`` and
``_studies`` (the methods, one base class each, joined here), ``_opening`` (creating,
checking or upgrading the tables at the first use, ``_migrate`` the upgrade steps),
``_schema`` (tables), ``_backend`` (engines, transactions, vendor errors),
``_rows`` (rows to records and back), ``_timeline`` (a long run's timeline, read short),
``_liveness`` (running or interrupted), ``_groups`` (runs with members: the host election,
the clocks, one run read back from its members), ``_replay`` (what the replay of a journal
left by a process that ended needs).
"""

from __future__ import annotations

from wattwise.store._base import MIN_PREFIX_LEN, default_store_path
from wattwise.store._reads import RunReads
from wattwise.store._studies import StudyMethods
from wattwise.store._writes import RunWrites

__all__ = ["MIN_PREFIX_LEN", "RunStore", "default_store_path"]


class RunStore(RunWrites, RunReads, StudyMethods):
    """Runs, components, windows, gaps and samples in a SQL database.

    The constructor only stores the URL; :meth:`open` (or the first call that needs the
    database) connects and creates or checks the schema. Safe to share between the threads
    of one process; several processes may write the same store at once.

    Args:
        url: a SQLAlchemy URL (``sqlite:///runs.sqlite``, ``postgresql://user@host/db``) or a
            plain path to a SQLite file.
        read_only: only read: never create the store, its directory or its tables, never
            write (a write method raises :class:`~wattwise.StoreError`).
    """
