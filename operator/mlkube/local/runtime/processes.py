"""Container processes: spawn, signal, measure and reap, so that none outlives its pod.

Owns the operating-system side of a container: each one runs in its own session and process
group (so the whole tree is signalled at once, as a container's cgroup would be), writes
stdout and stderr straight into its log file (output survives a runtime crash), and is
recorded in a directory of records so that a runtime started after a crash can kill what
the previous one left behind. Must not know about pods or the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import signal

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Process:
    """A running container process; ``pid`` is also its process group id."""

    pid: int
    record: pathlib.Path
    _handle: asyncio.subprocess.Process

    async def wait(self) -> int:
        """Wait for the main process to exit, kill what is left of its group, return the
        exit code the way a container runtime reports it (128 + signal when signalled)."""
        code = await self._handle.wait()
        signal_group(self.pid, signal.SIGKILL)
        self.record.unlink(missing_ok=True)
        return 128 - code if code < 0 else code

    def signal(self, sig: int) -> None:
        signal_group(self.pid, sig)

    async def stop(self, grace_seconds: float) -> int:
        """SIGTERM the group, SIGKILL it after ``grace_seconds``; return the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(asyncio.shield(self.wait()), grace_seconds)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            return await self.wait()


async def spawn(
    argv: list[str], *, env: dict[str, str], cwd: pathlib.Path, log_path: pathlib.Path, records: pathlib.Path, owner: str
) -> Process:
    """Start ``argv`` in a new session with output appended to ``log_path``.

    ``owner`` (e.g. ``<pod uid>/<container>``) is stored in the process record.
    Raises ``OSError`` when the program cannot be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    records.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (local directories, instant)
    with open(log_path, "ab") as log:  # noqa: ASYNC230 (opened for the child, not read here)
        handle = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    record = records / f"{handle.pid}.json"
    record.write_text(json.dumps({"pid": handle.pid, "started": start_ticks(handle.pid), "owner": owner, "argv": argv}))
    return Process(pid=handle.pid, record=record, _handle=handle)


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None when it is gone."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def stat_fields(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        raw = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.rsplit(")", 1)[1].split()


def group_members() -> dict[int, list[int]]:
    """Process group id -> member pids, for every live process on the machine."""
    groups: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = stat_fields(entry.name)
            if fields and fields[0] != "Z":
                groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return groups


def group_rss(pgids: set[int]) -> dict[int, int]:
    """Resident memory in bytes of each process group in ``pgids`` (summed over members)."""
    usage = dict.fromkeys(pgids, 0)
    for pgid, members in group_members().items():
        if pgid in usage:
            for pid in members:
                fields = stat_fields(pid)
                if fields:
                    usage[pgid] += int(fields[21]) * PAGE_SIZE
    return usage


def kill_orphans(records: pathlib.Path) -> list[str]:
    """SIGKILL the process groups a previous runtime recorded and did not reap.

    A group is ours when its leader is alive with the recorded start time, or when the
    leader is gone but members remain (Linux never hands out a pid that is still some
    group's id, so such members are the recorded container's children). Returns the
    owners of the groups killed.
    """
    killed = []
    if not records.is_dir():
        return killed
    members = group_members()
    for path in records.glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        pid = int(record["pid"])
        leader_started = start_ticks(pid)
        ours = (leader_started == record.get("started")) if leader_started is not None else bool(members.get(pid))
        if ours:
            signal_group(pid, signal.SIGKILL)
            killed.append(str(record.get("owner")))
        path.unlink(missing_ok=True)
    return killed
