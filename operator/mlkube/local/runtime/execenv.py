"""What `kubectl exec` needs to run a command "in" a running container: its environment and directory.

The runtime writes one record per container at each start (``runtime/pods/{uid}/exec/{container}.json``,
mode 0600: the environment may hold Secret values) and the API server reads it to start the
exec'd command with the same variables and working directory. There is no filesystem, PID or
network namespace to enter: the command runs as another process of the local user.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib


@dataclasses.dataclass(frozen=True)
class ExecEnv:
    env: dict[str, str]
    cwd: str
    pid: int  # the container's main process (its process group) when the record was written


def path(state_dir: str | pathlib.Path, uid: str, container: str) -> pathlib.Path:
    return pathlib.Path(state_dir) / "runtime" / "pods" / uid / "exec" / f"{container}.json"


def write(target: pathlib.Path, *, env: dict[str, str], cwd: pathlib.Path, pid: int) -> None:
    """Replace the record at `target` (a `path(...)`) atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"env": env, "cwd": str(cwd), "pid": pid}, handle)
    os.replace(temporary, target)


def read(state_dir: str | pathlib.Path, uid: str, container: str) -> ExecEnv | None:
    """The container's last record, or None when it never started (or its pod's files are gone)."""
    try:
        record = json.loads(path(state_dir, uid, container).read_text())
    except (OSError, ValueError):
        return None
    return ExecEnv(env={str(k): str(v) for k, v in record["env"].items()}, cwd=str(record["cwd"]), pid=int(record["pid"]))
