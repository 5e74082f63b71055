"""Durable object storage: SQLite (WAL) plus an in-memory index and a bounded event history.

Owns the global resourceVersion counter, the commit of every write before it is acknowledged,
the current-object index used for reads and lists, the event history that watches replay, and
fan-out of committed events to subscribers. Must not know Kubernetes semantics (validation,
finalizers, generation): callers hand it finished objects.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from mlkube.local.apiserver import errors

DEFAULT_HISTORY = 10_000

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


Subscriber = Callable[[Event], None]


class Store:
    def __init__(self, path: str, *, history: int = DEFAULT_HISTORY) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = collections.defaultdict(dict)
        self._uids: dict[str, tuple[str, str, str]] = {}
        self._history: collections.deque[Event] = collections.deque(maxlen=max(1, history))
        self._subscribers: list[Subscriber] = []
        self.rv = 0
        self.floor = 0  # the oldest RV a watch may resume from; events after it are all in history

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The database file: also what names this cluster."""
        return os.path.abspath(self._path)

    def open(self) -> None:
        os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (kill -9); only a power
        # loss may roll back the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # Each start takes a fresh RV: the in-memory history begins there, so a watch resuming from any
        # RV of an earlier run gets 410 and re-lists, while lists taken after the start can be watched.
        counter = int(self._db.execute("SELECT value FROM meta WHERE name='resourceVersion'").fetchone()[0])
        last_write = self._db.execute("SELECT MAX(rv) FROM objects").fetchone()[0] or 0
        self.rv = max(counter, last_write) + 1
        self._db.execute("UPDATE meta SET value=? WHERE name='resourceVersion'", (str(self.rv),))
        self.floor = self.rv
        for key, namespace, name, body in self._db.execute("SELECT key, namespace, name, body FROM objects"):
            obj = json.loads(body)
            self._objects[key][(namespace, name)] = obj
            self._uids[obj["metadata"]["uid"]] = (key, namespace, name)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

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
        Returns once SQLite has committed; then the index, history and subscribers are updated.
        """
        assert self._db is not None, "store is not open"
        rv = self.rv + 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        namespace, name = meta.get("namespace", ""), meta["name"]
        db = self._db
        if event_type == "DELETED":
            # The row goes, so the RV counter is kept in `meta`; other writes carry their RV in their row
            # (one autocommitted statement), and open() resumes after the larger of the two.
            db.execute("BEGIN")
            try:
                db.execute("DELETE FROM objects WHERE key=? AND namespace=? AND name=?", (key, namespace, name))
                db.execute("UPDATE meta SET value=? WHERE name='resourceVersion'", (str(rv),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        else:
            db.execute(
                "INSERT OR REPLACE INTO objects (key, namespace, name, rv, body) VALUES (?, ?, ?, ?, ?)",
                (key, namespace, name, rv, json.dumps(obj, separators=(",", ":"))),
            )
        self.rv = rv
        if event_type == "DELETED":
            self._objects[key].pop((namespace, name), None)
            self._uids.pop(meta["uid"], None)
        else:
            self._objects[key][(namespace, name)] = obj
            self._uids[meta["uid"]] = (key, namespace, name)
        event = Event(rv=rv, type=event_type, key=key, obj=obj, old=old)
        if len(self._history) == self._history.maxlen:
            self.floor = self._history[0].rv
        self._history.append(event)
        for subscriber in list(self._subscribers):
            subscriber(event)
        return obj

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
