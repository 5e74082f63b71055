"""Durable object storage: SQLite (WAL) plus an in-memory index and a bounded event history.

Owns the global resourceVersion counter, the commit of every write (made durable by
durability.GroupCommit before anything reflecting it is sent: `sync()`), the current-object index
used for reads and lists, the event history that watches replay (bounded by count and by bytes),
fan-out of committed events to subscribers, etcd's object size limit, and startup that loads
every row it can: rows that cannot be read are moved to `quarantine-<time>.jsonl` beside the
database (and reported by the caller) instead of stopping the start. Must not know Kubernetes
semantics (validation, finalizers, generation): callers hand it finished objects.

Local mode stores Secrets unencrypted in state.db (as etcd does without an EncryptionConfiguration):
the database, its -wal/-shm files and quarantine files are created 0600 in a 0700 directory, and
that is their only protection.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from mlkube.local.apiserver import durability, errors, limits, statedir

logger = logging.getLogger(__name__)
DEFAULT_HISTORY = 10_000
# Counted as the stored JSON of each event's new and previous state; Python objects take a few times
# more, so this keeps the history to a few hundred MB even when every event carries a 1.5 MiB object.
DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (key, namespace, name));
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('resourceVersion', '0');
"""


@dataclasses.dataclass
class Event:
    """One committed write, as watches see it."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str  # storage key, "group/plural"
    obj: dict[str, Any]  # the new state (the last state for DELETED), carrying rv
    old: dict[str, Any] | None  # the previous state, for selector transitions
    rendered: dict[Any, bytes] = dataclasses.field(default_factory=dict)  # serialisations cached per view
    size: int = 0  # bytes of stored JSON this event keeps alive (new and previous state)


Subscriber = Callable[[Event], None]


class Unreadable(Exception):
    """The database file itself cannot be read (not a row: the file); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Quarantined:
    """A row that could not be loaded at startup, now in `Store.quarantine_path` and no longer in the database."""

    key: str
    namespace: str
    name: str
    error: str


class Store:
    def __init__(
        self,
        path: str,
        *,
        history: int = DEFAULT_HISTORY,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        sync: Callable[[int], None] = durability.sync_file,
    ) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = collections.defaultdict(dict)
        self._sizes: dict[tuple[str, str, str], int] = {}  # stored JSON bytes of each current object
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._history: collections.deque[Event] = collections.deque()
        self._history_limit = max(1, history)
        self._history_bytes_limit = history_bytes
        self.history_bytes = 0
        self._subscribers: list[Subscriber] = []
        self._commits = durability.GroupCommit(path, sync=sync)
        self.rv = 0
        self.floor = 0  # the oldest RV a watch may resume from; events after it are all in history
        self.quarantined: list[Quarantined] = []
        self.quarantine_path = ""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The database file: also what names this cluster."""
        return os.path.abspath(self._path)

    def open(self) -> None:
        """Open (creating 0600) and load; unreadable rows go to a quarantine file. Unreadable when the file is not a database."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal/-shm the database's mode
            statedir.make_private(self.path + suffix, create=not suffix)
        try:
            self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            wal = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
            # NORMAL in WAL mode writes each commit to the WAL without syncing; GroupCommit syncs before any
            # response. Without WAL (a filesystem that refuses it) FULL makes SQLite sync every commit itself.
            self._db.execute("PRAGMA synchronous=NORMAL" if wal else "PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # Each start takes a fresh RV: the in-memory history begins there, so a watch resuming from any
            # RV of an earlier run gets 410 and re-lists, while lists taken after the start can be watched.
            counter = _counter(self._db.execute("SELECT value FROM meta WHERE name='resourceVersion'").fetchone()[0])
            last_write = self._db.execute("SELECT MAX(rv) FROM objects").fetchone()[0] or 0
            rows = self._db.execute("SELECT rowid, key, namespace, name, body FROM objects").fetchall()
            self.rv = max(counter, last_write) + 1
            self._db.execute("UPDATE meta SET value=? WHERE name='resourceVersion'", (str(self.rv),))
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            self.close()
            raise Unreadable(
                f"{self.path} cannot be read as mlkube's state database ({exc}); move it (and its -wal/-shm files) "
                "aside to start empty, or restore a backup"
            ) from exc
        self.floor = self.rv
        bad = []
        for rowid, key, namespace, name, body in rows:
            try:
                obj = _loaded(body, namespace=namespace, name=name)
            except (ValueError, TypeError, KeyError, RecursionError) as exc:
                bad.append((rowid, key, namespace, name, body, f"{type(exc).__name__}: {exc}"))
                continue
            self._objects[key][(namespace, name)] = obj
            self._sizes[(key, namespace, name)] = len(body)
            self._uids[obj["metadata"]["uid"]] = (key, namespace, name)
        if bad:
            self._quarantine(bad)
        self._commits.open(committed=self.rv, wal=wal)

    def _quarantine(self, bad: list[tuple[int, str, str, str, Any, str]]) -> None:
        """Copy unreadable rows to a new 0600 file (synced), then delete them from the database."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = os.path.join(os.path.dirname(self.path), f"quarantine-{stamp}.jsonl")
        lines = []
        for _, key, namespace, name, body, error in bad:
            record = {"key": key, "namespace": namespace, "name": name, "error": error}
            if isinstance(body, str):
                record["body"] = body
            else:
                record["bodyBase64"] = base64.b64encode(body if isinstance(body, bytes) else repr(body).encode()).decode()
            lines.append(json.dumps(record) + "\n")
        statedir.write_private(path, "".join(lines))
        assert self._db is not None
        self._db.execute("BEGIN")
        self._db.executemany("DELETE FROM objects WHERE rowid=?", [(row[0],) for row in bad])
        self._db.execute("COMMIT")
        self.quarantine_path = path
        self.quarantined = [Quarantined(key, namespace, name, error) for _, key, namespace, name, _, error in bad]

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(durability.Failed):
                self._commits.close()
            self._db.close()
            self._db = None

    async def sync(self) -> None:
        """Return once every write made so far is on disk; 500 (InternalError) if syncing failed."""
        try:
            await self._commits.wait(self.rv)
        except durability.Failed as exc:
            raise errors.internal(str(exc)) from exc

    @property
    def durable_rv(self) -> int:
        return self._commits.durable

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects[key].get((namespace, name))

    def list(self, key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Current objects of one type, sorted by namespace then name (the order pagination uses)."""
        items = self._objects[key].items()
        if namespace:
            return [obj for (ns, _), obj in sorted(items, key=lambda kv: kv[0]) if ns == namespace]
        return [obj for _, obj in sorted(items, key=lambda kv: kv[0])]

    def keys(self) -> list[str]:
        return [key for key, objects in self._objects.items() if objects]

    def by_uid(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        where = self._uids.get(uid)
        if where is None:
            return None
        key, namespace, name = where
        return key, self._objects[key][(namespace, name)]

    def walk(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every current object with its storage key (a snapshot: safe to write while iterating)."""
        for key, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield key, obj

    # -- writes ----------------------------------------------------------------------------

    def write(self, key: str, obj: dict[str, Any], *, event_type: str, old: dict[str, Any] | None) -> dict[str, Any]:
        """Commit `obj` (the new state, or the last state for DELETED) under the next RV.

        The object's metadata.resourceVersion is set in place; the caller must not reuse it.
        Returns once SQLite has committed (not yet synced: see `sync()`); then the index, history and
        subscribers are updated. 413 when the stored form is over limits.MAX_OBJECT_BYTES; 500 when the
        database refuses the write (disk full) or an earlier sync failed, with nothing changed.
        """
        assert self._db is not None, "store is not open"
        if self._commits.failure is not None:
            raise errors.internal(str(self._commits.failure))
        rv = self.rv + 1
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        previous = meta.get("resourceVersion")
        meta["resourceVersion"] = str(rv)
        body = "" if event_type == "DELETED" else json.dumps(obj, separators=(",", ":"))
        if len(body) > limits.MAX_OBJECT_BYTES:
            _restore_rv(meta, previous)
            group, _, resource = key.partition("/")
            raise errors.object_too_large(resource, group, name, size=len(body), limit=limits.MAX_OBJECT_BYTES)
        db = self._db
        try:
            if event_type == "DELETED":
                # The row goes, so the RV counter is kept in `meta`; other writes carry their RV in their row
                # (one autocommitted statement), and open() resumes after the larger of the two.
                db.execute("BEGIN")
                db.execute("DELETE FROM objects WHERE key=? AND namespace=? AND name=?", (key, namespace, name))
                db.execute("UPDATE meta SET value=? WHERE name='resourceVersion'", (str(rv),))
                db.execute("COMMIT")
            else:
                db.execute(
                    "INSERT OR REPLACE INTO objects (key, namespace, name, rv, body) VALUES (?, ?, ?, ?, ?)",
                    (key, namespace, name, rv, body),
                )
        except BaseException as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            _restore_rv(meta, previous)
            if isinstance(exc, sqlite3.Error):
                reason = f"{exc} ({getattr(exc, 'sqlite_errorname', type(exc).__name__)})"
                logger.error("write of %s %s/%s failed: %s", key, namespace, name, reason)
                raise errors.internal(
                    f"the write could not be stored in {self.path}: {reason}; free disk space in the state directory and retry"
                ) from exc
            raise
        self.rv = rv
        self._commits.committed(rv)
        where = (key, namespace, name)
        old_size = self._sizes.get(where, 0)
        if event_type == "DELETED":
            self._objects[key].pop((namespace, name), None)
            self._sizes.pop(where, None)
            self._uids.pop(meta["uid"], None)
        else:
            self._objects[key][(namespace, name)] = obj
            self._sizes[where] = len(body)
            self._uids[meta["uid"]] = (key, namespace, name)
        event = Event(rv=rv, type=event_type, key=key, obj=obj, old=old, size=len(body) + old_size)
        self._remember(event)
        for subscriber in list(self._subscribers):
            subscriber(event)
        return obj

    def _remember(self, event: Event) -> None:
        """Append to the history, dropping the oldest events past the count or the byte budget (always keeping one)."""
        self._history.append(event)
        self.history_bytes += event.size
        while len(self._history) > self._history_limit or (
            self.history_bytes > self._history_bytes_limit and len(self._history) > 1
        ):
            dropped = self._history.popleft()
            self.history_bytes -= dropped.size
            self.floor = dropped.rv

    # -- watching --------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def events_since(self, key: str, rv: int) -> list[Event]:
        """Retained events of one type with an RV above `rv`, oldest first; 410 when `rv` is too old."""
        if rv < self.floor:
            raise errors.expired(rv, self.floor + 1)
        newer: list[Event] = []
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.key == key:
                newer.append(event)
        newer.reverse()
        return newer


def _loaded(body: Any, *, namespace: str, name: str) -> dict[str, Any]:
    """A stored row's object; ValueError when it is not one (corrupt JSON, or not the object the row names)."""
    obj = json.loads(body)
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("the stored body is not an object with metadata")
    if meta.get("name") != name or meta.get("namespace", "") != namespace:
        raise ValueError(
            f"the stored body names {meta.get('namespace', '')}/{meta.get('name')}, not its row's {namespace}/{name}"
        )
    if not isinstance(meta.get("uid"), str) or not str(meta.get("resourceVersion", "")).isdigit():
        raise ValueError("the stored body has no uid or resourceVersion")
    return obj


def _counter(value: Any) -> int:
    """The stored RV counter; 0 (so the objects' own RVs decide) when it was damaged."""
    try:
        return int(value)
    except (TypeError, ValueError):
        logger.warning("the stored resourceVersion counter %r is not a number; resuming after the objects' own RVs", value)
        return 0


def _restore_rv(meta: dict[str, Any], previous: str | None) -> None:
    """Undo the RV stamped on a write that was refused, so the caller's object is unchanged."""
    if previous is None:
        meta.pop("resourceVersion", None)
    else:
        meta["resourceVersion"] = previous
