"""The deletion of a retired version's artifacts: ``python -m mlkube.purge URI --storage ROOT``.

The ModelVersion controller runs it as a batch/v1 Job in the version's namespace once the
project's ``registry.gracePeriod`` has passed since retention retired the version
(``control/manifests/purge.py``): under the token-less trainers' ServiceAccount, with the
project's storage credentials by ``secretKeyRef`` and nothing of the operator's. It deletes every
object under ``URI``, the version's artifact prefix, and only if that prefix lies strictly inside
``ROOT/runs/`` (``ROOT``: the project's ``spec.storage.uri``, under which every run writes its own
``runs/<trainingjob>-<uid8>/``); anything else is refused before a single object is touched.
Deleting a prefix that is already empty succeeds, so an interrupted deletion can be run again.

Its answer, one line, goes to the termination message (``--result``, default
``/dev/termination-log``) and to stdout (stderr on failure). Exit codes: 0 deleted, 1 the store
failed (possibly transient: the controller tries again later), 2 refused or bad arguments.

Must not: read anything of the version but the names of its objects, or delete outside ``URI``.
"""

from __future__ import annotations

import argparse
import sys

from mlkube.common import containerpath, termination, uris
from mlkube.ml import errors, storage

TERMINATION_LOG = termination.PATH
RUNS = "runs"  # the directory of ROOT every run's artifacts are under (control/manifests/training.output_uri)
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


def purge(uri: str, *, root: str, options: storage.Options | None = None) -> int:
    """Delete every object under ``uri``; the number deleted. Raises ``storage.UnsafeName`` when
    ``uri`` is not strictly inside ``root``'s ``runs/`` directory, ``errors.StorageError`` when the
    store fails."""
    storage.require_inside(uri, uris.join(root, RUNS))
    return storage.delete_prefix(uri, options=options)


def answer(uri: str, *, root: str, options: storage.Options) -> tuple[str, int]:
    """The one-line answer and exit code of purging ``uri``."""
    try:
        count = purge(uri, root=root, options=options)
    except storage.UnsafeName as refused:
        return f"refused: {refused}", EXIT_REFUSED
    except errors.StorageError as failure:
        return f"{type(failure).__name__}: {failure}", EXIT_FAILED
    return f"deleted {count} objects under {uri}", EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlkube.purge", description=__doc__.split("\n")[0])
    parser.add_argument("uri", help="the version's artifact prefix, e.g. s3://bucket/models/runs/train-1-0a1b2c3d/")
    parser.add_argument("--storage", required=True, help="the project's spec.storage.uri: URI must be inside its runs/")
    parser.add_argument("--endpoint", help="S3-compatible endpoint (the project's spec.storage.endpoint)")
    parser.add_argument(
        "--default-credentials",
        action="store_true",
        help="without AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, use the pod's default AWS identity (else anonymous requests)",
    )
    parser.add_argument("--result", default=TERMINATION_LOG, help="container path of the answer file (default: %(default)s)")
    args = parser.parse_args(argv)
    options = storage.Options(endpoint=args.endpoint, default_credentials=args.default_credentials)
    message, code = answer(args.uri, root=args.storage, options=options)
    print(message, file=sys.stdout if code == EXIT_OK else sys.stderr, flush=True)
    path = containerpath.resolve(args.result)
    termination.write((message + "\n").encode(), path)
    return code


if __name__ == "__main__":
    sys.exit(main())
