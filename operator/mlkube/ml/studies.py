"""The database a TrainingJob's trial pods share their Optuna study through.

`open(url)` is Optuna's RDB storage on an SQLAlchemy URL: PostgreSQL on a cluster
(`postgresql://user:password@host:5432/db`; the `postgresql` and `postgres` schemes use the
psycopg 3 driver) or an SQLite file on one machine (`sqlite:////state/studies.db`). Every running
trial records a heartbeat every `HEARTBEAT_SECONDS`; a trial whose pod stopped beating for
`GRACE_SECONDS` is failed by whichever pod looks next (`optuna.storages.fail_stale_trials`) and
enqueued again with the same parameters (`RetryHeartbeatStaleTrialCallback`, at most
`MAX_RETRIES` times), so a lost pod costs the trial it was running, not the run.

A journal file has no heartbeats, so it is refused for trial pods.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterable

import optuna
import sqlalchemy.exc

from mlkube.ml import errors

HEARTBEAT_SECONDS = 2
GRACE_SECONDS = 10
MAX_RETRIES = 3
OPEN_ATTEMPTS = 30  # a database still starting, or another pod creating the tables: retried


def normalized(url: str) -> str:
    """`url` with the driver SQLAlchemy should use: psycopg 3 for PostgreSQL."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg{sep}{rest}"
    return url


def redacted(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def open(url: str) -> optuna.storages.RDBStorage:
    """The study storage at `url`, with heartbeats and the retry of stale trials."""
    url = normalized(url)
    scheme = url.partition("://")[0]
    if not scheme or "://" not in url:
        raise errors.InvalidSpec(
            f"tuning.storage: {redacted(url)!r} is not a database URL; trial pods need one such as "
            "postgresql://user:password@host:5432/db or sqlite:////path/studies.db (a journal file has no heartbeats)"
        )
    engine: dict = {"connect_args": {"timeout": 60}} if scheme.startswith("sqlite") else {"pool_pre_ping": True}
    last: Exception | None = None
    for _ in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use since 2.x
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=GRACE_SECONDS,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),
                )
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            last = e
            time.sleep(2)
        except (ImportError, sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as e:
            raise errors.InvalidSpec(f"tuning.storage: cannot use {redacted(url)}: {e}") from e
    raise errors.TrainingFailed(f"the study database {redacted(url)} did not answer: {str(last).splitlines()[0]}")


class Heartbeat:
    """A thread recording the heartbeat of every trial this pod is running."""

    def __init__(self, storage: optuna.storages.RDBStorage) -> None:
        self._storage = storage
        self._trials: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mlkube-heartbeat", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        with self._lock:
            self._trials.add(trial_id)
        self._storage.record_heartbeat(trial_id)

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self._trials.discard(trial_id)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS * 2)

    def _running(self) -> Iterable[int]:
        with self._lock:
            return list(self._trials)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            for trial_id in self._running():
                try:
                    self._storage.record_heartbeat(trial_id)
                except sqlalchemy.exc.SQLAlchemyError:
                    pass  # the next beat tries again; missing beats past the grace period lose the trial
