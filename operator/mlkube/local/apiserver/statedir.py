"""The state directory: one API server at a time, and files only their owner can read.

Owns the exclusive lock (`fcntl.flock` on `apiserver.lock`, which records the holder's pid; the
kernel releases it when the holder exits, however it exits) and the modes of the files the store
writes: the directory 0700, the database, its -wal/-shm files and quarantine files 0600. Local
mode keeps Secrets unencrypted in state.db, so these modes are their only protection. Must not
read or write objects.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

LOCK_FILE = "apiserver.lock"


class Locked(Exception):
    """Another process holds the state directory; the message names the directory and the holder's pid."""


class Lock:
    """A held lock on one state directory; `release()` (or the process ending) lets the next server in."""

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self.path = path

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1


def lock(state_dir: str) -> Lock:
    """Take the directory's exclusive lock at once, or raise Locked (never waits)."""
    path = os.path.join(state_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Locked(
            f"state directory {state_dir} is in use by another mlkube API server (pid {holder}, lock {path}): "
            "stop that server first, or give this one another --state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Lock(fd, path)


def make_private(path: str, *, create: bool = False) -> None:
    """Mode 0600 on `path` (created empty when `create` and missing; nothing when missing otherwise)."""
    if create:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o600)


def write_private(path: str, text: str) -> None:
    """Create `path` (0600, must not exist) with `text`, synced with its directory entry before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
