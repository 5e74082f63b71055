"""The images the local runtime can run, and how a container's command becomes a local argv.

Owns the one declared table of container images that have a local equivalent (``IMAGES``)
and the translation of a container's ``image``/``command``/``args`` into the argv of a local
process. Pure: no process is started and no file is read here.

Kubernetes' rules for ``command`` and ``args`` are kept exactly: ``command`` replaces the
image's ENTRYPOINT, ``args`` replaces its CMD, and a ``command`` without ``args`` drops the
CMD. The image's interpreter is then replaced by the running one (``python``, ``python3``,
``/usr/local/bin/python3.11`` become ``sys.executable``) and the ``mlkube`` console script by
``sys.executable -m mlkube.cli``, so the project's entrypoints run from this environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys


@dataclasses.dataclass(frozen=True)
class Image:
    """What a container image would run: its ENTRYPOINT and CMD."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    description: str = ""


IMAGES: dict[str, Image] = {
    # The project's image carries every component; its ENTRYPOINT is the `mlkube` CLI
    # (`mlkube operator`), and pods name the component with `command`/`args`
    # (`python -m mlkube.trainer`, `python -m mlkube.serving.server`, ...).
    "mlkube/mlkube": Image(entrypoint=("mlkube",), description="the project's image"),
    "mlkube": Image(entrypoint=("mlkube",), description="the project's image"),
    # KServe's storage initializer, which KServe adds as an init container to fetch
    # `storageUri` into /mnt/models; the local equivalent is a module of this package.
    "kserve/storage-initializer": Image(
        entrypoint=("python", "-m", "mlkube.local.runtime.storage_initializer"),
        description="KServe's storage initializer",
    ),
    # Plain Python, for tests and small utility containers (`python -c ...`).
    "python": Image(cmd=("python3",), description="the official Python image"),
    # BusyBox's shell and applets, played by the host's /bin/sh and utilities (`sh -c "date; sleep 5"`).
    "busybox": Image(cmd=("sh",), description="BusyBox (the host's POSIX shell and utilities)"),
}

# A path component is a registry host when it has a dot or a port, or is localhost
# (the rule of the Docker reference grammar).
_REGISTRY = re.compile(r"^(localhost|[^/]*[.:][^/]*)$")
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")


class ImageNotFound(Exception):
    """The image has no local equivalent; the pod stays Pending with ErrImagePull."""

    def __init__(self, image: str) -> None:
        super().__init__(
            f'image "{image}" has no local equivalent in the mlkube local runtime; runnable images: {", ".join(sorted(IMAGES))}'
        )
        self.image = image


def repository(image: str) -> str:
    """The repository part of an image reference, without registry, tag or digest.

    ``ghcr.io/mlkube/mlkube:0.1`` -> ``mlkube/mlkube``; ``python:3.11-slim`` -> ``python``;
    ``docker.io/library/python@sha256:...`` -> ``python``.
    """
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    last = last.split(":", 1)[0]
    parts = [*filter(None, head.split("/")), last] if head else [last]
    if len(parts) > 1 and _REGISTRY.match(parts[0]):
        parts = parts[1:]
    if parts[0] == "library" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts)


def lookup(image: str) -> Image:
    """The table entry for ``image``; raises :class:`ImageNotFound` when there is none."""
    found = IMAGES.get(repository(image))
    if found is None:
        raise ImageNotFound(image)
    return found


def argv(container: dict) -> list[str]:
    """The local argv that runs ``container`` (a pod spec container dict).

    Raises :class:`ImageNotFound` for an image without a local equivalent and
    ``ValueError`` when neither the container nor the image says what to run.
    """
    image = lookup(container.get("image") or "")
    command = container.get("command")
    args = container.get("args")
    if command:
        words = [*command, *(args or [])]
    else:
        words = [*image.entrypoint, *(image.cmd if args is None else args)]
    if not words:
        raise ValueError(
            f"container {container.get('name')!r}: image {container.get('image')!r} has no entrypoint locally; set `command`"
        )
    return localised(words)


def localised(words: list[str]) -> list[str]:
    """``words`` with the image's interpreter and console script replaced by local ones."""
    program = os.path.basename(words[0])
    if _PYTHON.match(program):
        return [sys.executable, *words[1:]]
    if program == "mlkube":
        return [sys.executable, "-m", "mlkube.cli", *words[1:]]
    return list(words)


def search_path(host_path: str) -> str:
    """The PATH given to containers: this interpreter's directory first, then the host's.

    Shell commands (``sh -c "python ..."``) then find the same interpreter.
    """
    return os.pathsep.join([os.path.dirname(sys.executable), host_path])
