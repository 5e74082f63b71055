"""Group commit: nothing leaves the server before the commits it reflects are on disk, and commits
that arrive together share one fsync.

SQLite runs in WAL mode with `synchronous=NORMAL`: every commit is written to the -wal file at
once (so it survives the death of the process) and SQLite syncs the WAL before each checkpoint
and the database after it, but not at commit, so a power loss could take the last commits.
This module adds the missing sync: after commits, one worker thread fdatasyncs the -wal file;
every commit made before that sync began is then durable, however many there were. A response
waits (`wait(rv)`) until the commits up to the RV it reflects are durable; commits made while a
sync runs are covered by the next one. Because the WAL is a log that recovery replays as a
prefix, "every commit up to RV n is durable" is one number, `durable`.

Owns the -wal file descriptor, the sync thread, the waiters and the durable RV. A failed sync
is final (after a failed fsync the kernel may have dropped the pages; retrying can report a
success that is false): every later wait raises `Failed` and the server must be restarted, which
recovers the last durable state. Must not write to the database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Failed(Exception):
    """A sync failed: what was committed since the last successful sync may not be on disk."""


def sync_file(fd: int) -> None:
    """Flush a file's data to stable storage (F_FULLFSYNC where fsync stops at the drive cache)."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    elif hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def sync_directory(path: str) -> None:
    """Make the directory entries in `path` durable (a newly created database or -wal file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GroupCommit:
    """The durability of one SQLite database's commits, identified by their RVs (increasing)."""

    def __init__(self, database: str, *, sync: Callable[[int], None] = sync_file) -> None:
        self._database = database
        self._wal = database + "-wal"
        self._sync_fd = sync
        self._fd = -1
        self._inode = -1
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None
        self._committed = 0
        self._enabled = False  # False without a WAL: SQLite then syncs every commit itself (synchronous=FULL)
        self.durable = 0  # every commit with an RV up to this one is on disk
        self.failure: Failed | None = None
        self.syncs = 0  # fsyncs done, and the commits they covered: commits/syncs is the batch size
        self.covered = 0

    def open(self, *, committed: int, wal: bool = True) -> None:
        """Start at `committed` (the RV of the last commit made by opening): synced here, before any request.

        With `wal=False` SQLite syncs each commit itself and every commit counts as durable at once.
        """
        if not wal:
            self._committed = self.durable = committed
            return
        self._enabled = True
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlkube-fsync")
        self._committed = committed
        self.sync_now()
        sync_directory(os.path.dirname(os.path.abspath(self._database)))

    def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._enabled and self.failure is None and self.durable < self._committed:
            self.sync_now()
        self._release(Failed("the store was closed before this write was synced"))
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.syncs:
            logger.info("group commit: %d commits made durable by %d fsyncs", self.covered, self.syncs)

    def committed(self, rv: int) -> None:
        """SQLite committed RV `rv`: start a sync when an event loop runs here (else `sync_now` or close does)."""
        self._committed = rv
        if not self._enabled:
            self.durable = rv
            return
        self._start_flusher()

    async def wait(self, rv: int) -> None:
        """Return once every commit up to `rv` is on disk; Failed if a sync failed."""
        if self.failure is not None:
            raise self.failure
        if rv <= self.durable:
            return
        if self._executor is None:
            raise Failed(f"the state database {self._database} is closed: commits after RV {self.durable} were not synced")
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((rv, future))
        self._start_flusher()
        await future

    def sync_now(self) -> None:
        """Sync synchronously (at open and close, or with no event loop)."""
        target = self._committed
        try:
            self._sync()
        except OSError as exc:
            self._fail(exc)
            raise self.failure from exc
        self._advance(target)

    # -- internals -------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._executor is not None and self.failure is None:
            self._flusher = loop.create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.durable < self._committed and self.failure is None and self._executor is not None:
            await asyncio.sleep(0)  # one more loop pass: requests that arrived meanwhile commit into this batch
            target = self._committed  # commits made while this sync runs wait for the next one
            try:
                await loop.run_in_executor(self._executor, self._sync)
            except OSError as exc:
                self._fail(exc)
                return
            self._advance(target)

    def _advance(self, target: int) -> None:
        if target > self.durable:
            self.syncs += 1
            self.covered += target - self.durable
            self.durable = target
        remaining = []
        for rv, future in self._waiters:
            if rv <= self.durable:
                if not future.done():
                    future.set_result(None)
            else:
                remaining.append((rv, future))
        self._waiters = remaining

    def _fail(self, exc: OSError) -> None:
        self.failure = Failed(
            f"the state database {self._database} could not be synced to disk ({exc}); writes after RV {self.durable} "
            "may be lost: restart the API server, which recovers the last durable state"
        )
        logger.critical("%s", self.failure)
        self._release(self.failure)

    def _release(self, failure: Failed) -> None:
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(failure)
        self._waiters = []

    def _sync(self) -> None:
        """Runs in the sync thread: fdatasync the -wal file (reopened if SQLite replaced it), or the database without one."""
        try:
            inode = os.stat(self._wal).st_ino
        except FileNotFoundError:
            fd = os.open(self._database, os.O_RDONLY)
            try:
                self._sync_fd(fd)
            finally:
                os.close(fd)
            return
        if inode != self._inode:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd, self._inode = os.open(self._wal, os.O_RDONLY), inode
        self._sync_fd(self._fd)
