"""The termination message: how a Job's container hands its answer to the operator.

The trainer, the drift check, the replay, the batch scorer and the purge each end by writing their
answer, compact JSON (or one line of text), to ``/dev/termination-log`` (re-rooted in local mode by
``containerpath``); the operator reads it from the pod's status. A failure to write is reported on
stderr and never raised: the entry points also print the answer as their last stdout line, which
``terminationMessagePolicy: FallbackToLogsOnError`` turns into the message.

Dependency-free, like the rest of ``common``.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any

PATH = "/dev/termination-log"
"""The container path Kubernetes reads the termination message from."""


def encode(answer: dict[str, Any]) -> bytes:
    """``answer`` as compact UTF-8 JSON (what fits the message's size limit best)."""
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


def write(data: bytes, path: str | os.PathLike[str] | pathlib.Path) -> None:
    """Write ``data`` to the already resolved ``path``; report a failure on stderr."""
    target = pathlib.Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as e:
        print(f"cannot write the answer to {target}: {e.strerror or e}", file=sys.stderr, flush=True)
