"""Optuna's RDB storage for shared studies: URLs, heartbeats, and errors in one place.

Workers on several machines join one Optuna study through a SQL database (PostgreSQL for
machines, or SQLite for processes of one machine). Each worker beats a heartbeat for its
running trial; when a worker dies, the next worker to ask for a trial finds the heartbeat
stale and marks the trial failed, and the study goes on.

This is the only module that builds Optuna storages, and where SQLAlchemy's and Optuna's
errors about them become wattwise's (:class:`~wattwise.ConfigError` for a bad URL,
:class:`~wattwise.StoreUnreachable` for a database that cannot be reached).
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from wattwise._errors import ConfigError, StoreUnreachable
from wattwise.store._backend import mask_url

if TYPE_CHECKING:
    import optuna

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "close_storage",
    "open_storage",
    "require_existing_storage",
    "store_url_for",
]

#: A running trial's heartbeat period, in s.
DEFAULT_HEARTBEAT_S: Final = 10
#: A trial whose heartbeat is older than this many periods is failed by the next worker.
GRACE_PERIODS: Final = 3
#: How long connecting to a PostgreSQL server may take, in s.
CONNECT_TIMEOUT_S: Final = 10
# Workers starting together may race to create Optuna's tables: retry that, not the rest.
_CREATE_TRIES: Final = 4

_HINT: Final = "postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:///PATH"

StaleCallback = Callable[["optuna.Study", "optuna.trial.FrozenTrial"], None]


def _normalise(url: str) -> tuple[str, str]:
    """The URL SQLAlchemy should get (psycopg 3 for PostgreSQL), and its backend."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    shown = mask_url(url)
    if "://" not in url:
        raise ConfigError(f"bad --storage {shown!r}: use {_HINT}")
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(f"bad --storage URL {shown}: use {_HINT}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        driver = parsed.get_driver_name() if "+" in parsed.drivername else "psycopg"
        parsed = parsed.set(drivername=f"postgresql+{driver}")
        return parsed.render_as_string(hide_password=False), "postgresql"
    if backend in ("sqlite", "mysql"):
        return url, backend
    raise ConfigError(f"unsupported --storage {shown}: use {_HINT}")


def require_existing_storage(url: str) -> None:
    """Refuse a SQLite storage file that does not exist (Optuna would create it).

    For the commands that only look at a study (``sweep status``): they must not create one.

    Raises:
        ConfigError: the SQLite file is missing, or the URL is bad.
    """
    import sqlalchemy as sa

    _, backend = _normalise(url)
    if backend != "sqlite":
        return
    database = sa.make_url(url).database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).expanduser().is_file():
        raise ConfigError(
            f"no study storage at {mask_url(url)}: start the study there first "
            f"(`wattwise sweep run --storage URL --study NAME`)"
        )


def store_url_for(storage_url: str) -> str | None:
    """The wattwise store that goes with a storage: the same database when it is PostgreSQL
    (wattwise's tables are prefixed ``wattwise_``), otherwise None (the default store)."""
    _, backend = _normalise(storage_url)
    return storage_url if backend == "postgresql" else None


def open_storage(
    url: str,
    *,
    heartbeat_interval_s: int | None = DEFAULT_HEARTBEAT_S,
    grace_period_s: int | None = None,
    on_stale_trial: StaleCallback | None = None,
) -> optuna.storages.RDBStorage:
    """Connect to an Optuna RDB storage (creating its tables when needed).

    Args:
        url: ``postgresql://...`` (through psycopg 3), ``sqlite:///PATH``, ``mysql://...``.
        heartbeat_interval_s: heartbeat period of running trials, in s (None: no
            heartbeat, so a killed worker's trial stays ``running`` for ever).
        grace_period_s: a running trial whose heartbeat is older than this is failed, in s
            (default: three periods).
        on_stale_trial: called with each trial this process fails for a stale heartbeat.

    Raises:
        ConfigError: a malformed or unsupported URL, a bad heartbeat setting.
        StoreUnreachable: the database cannot be reached, or its driver is missing.
    """
    import optuna
    from sqlalchemy import exc as sa_exc

    target, backend = _normalise(url)
    shown = mask_url(url)
    if heartbeat_interval_s is not None and heartbeat_interval_s < 1:
        raise ConfigError(f"the heartbeat must be >= 1 s, got {heartbeat_interval_s}")
    grace = grace_period_s
    if heartbeat_interval_s is not None and grace is None:
        grace = GRACE_PERIODS * heartbeat_interval_s
    if grace is not None and heartbeat_interval_s is not None and grace <= heartbeat_interval_s:
        raise ConfigError(
            f"the grace period ({grace} s) must be longer than the heartbeat "
            f"({heartbeat_interval_s} s), or live trials would be failed"
        )
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    kwargs: dict[str, Any] = {
        "engine_kwargs": engine_kwargs,
        "heartbeat_interval": heartbeat_interval_s,
        "grace_period": grace if heartbeat_interval_s is not None else None,
    }
    if on_stale_trial is not None:
        # Optuna 4.9 renamed failed_trial_callback; take whichever this Optuna has.
        params = inspect.signature(optuna.storages.RDBStorage).parameters
        name = (
            "heartbeat_stale_trial_callback"
            if "heartbeat_stale_trial_callback" in params
            else "failed_trial_callback"
        )
        kwargs[name] = on_stale_trial
    for attempt in range(_CREATE_TRIES):
        try:
            with warnings.catch_warnings():
                # The heartbeat is marked experimental in Optuna; it is what makes a killed
                # worker's trial fail, so it is used on purpose.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(target, **kwargs)
        except ImportError as exc:
            hint = "pip install 'wattwise[postgres]'" if backend == "postgresql" else str(exc)
            raise StoreUnreachable(
                f"cannot use the study storage {shown}: its database driver is missing ({hint})"
            ) from None
        except (sa_exc.IntegrityError, sa_exc.ProgrammingError) as exc:
            if attempt + 1 < _CREATE_TRIES and "exist" in str(exc).lower():
                time.sleep(0.2 * (attempt + 1))
                continue
            raise StoreUnreachable(
                f"cannot use the study storage {shown}: {_reason(exc)}"
            ) from None
        except sa_exc.ArgumentError as exc:
            raise ConfigError(f"bad --storage URL {shown}: {_reason(exc)}") from None
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnreachable(
                f"cannot reach the study storage {shown}: {_reason(exc)}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def close_storage(storage: optuna.storages.RDBStorage) -> None:
    """Release a storage's connections (Optuna keeps a pool open until then)."""
    storage.remove_session()
    storage.engine.dispose()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    first = " ".join(text.split())
    # SQLAlchemy appends a background link; the driver's own message is what helps.
    return first.split(" (Background on this error")[0][:300]
