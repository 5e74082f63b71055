"""Where an absolute container path lives for the current process.

On a cluster a container sees its volumes at their mount paths (`/mnt/models`,
`/etc/mlkube/spec.json`, `/dev/termination-log`). In local mode the process
runtime runs containers as plain processes, which cannot see those paths, so it
materialises each pod's files under one directory and passes it in
``MLKUBE_CONTAINER_ROOT``. Every entrypoint of the project resolves container
paths through :func:`resolve`, so the same code runs unchanged in both places.

This module must stay dependency-free: the trainer, the model server and the
router all import it.
"""

from __future__ import annotations

import os
import pathlib

ROOT_ENV = "MLKUBE_CONTAINER_ROOT"


def resolve(path: str | os.PathLike[str]) -> pathlib.Path:
    """Return where the container path ``path`` is for this process.

    Relative paths are returned unchanged; absolute ones are re-rooted under
    ``$MLKUBE_CONTAINER_ROOT`` when it is set.
    """
    p = pathlib.PurePosixPath(os.fspath(path))
    root = os.environ.get(ROOT_ENV)
    if not root or not p.is_absolute():
        return pathlib.Path(p)
    return pathlib.Path(root, *p.parts[1:])
