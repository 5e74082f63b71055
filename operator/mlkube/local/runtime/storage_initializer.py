"""Local equivalent of KServe's storage initializer: ``python -m ... <storageUri> <dest>``.

Runs as the ``storage-initializer`` init container of a predictor pod and copies the model
at ``storageUri`` into the container path ``dest`` (``/mnt/models``, resolved through
``mlkube.common.containerpath``). Supports ``file://`` (or a plain path), ``s3://`` with KServe's
variables (``AWS_ENDPOINT_URL`` or ``S3_ENDPOINT`` + ``S3_USE_HTTPS``, ``S3_VERIFY_SSL``,
``AWS_REGION``, the AWS keys) and ``http(s)://`` for a single file. A URI naming one object
or file is copied into ``dest`` under its base name; a prefix or directory is copied whole.
Every file lands under ``dest``: an object whose key would climb out of it (``../x``) is refused
with an error naming the key. Errors go to the termination log and exit 1, as KServe's
initializer does.

Beyond KServe: with ``MLKUBE_MODEL_DIGEST`` set (the local KServe controller passes the
InferenceService's pinned digest, see ``api.artifact``), the copy must be an mlkube model version
whose ``MANIFEST.json`` hashes to that digest and whose files match the manifest; otherwise the
copy is removed and the initializer fails, so the model server never starts on it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import urllib.parse
import urllib.request

from mlkube.common import containerpath
from mlkube.ml import artifacts, storage


def fetch(uri: str, dest: pathlib.Path, *, expected_digest: str | None = None) -> list[pathlib.Path]:
    """Copy the model at ``uri`` into ``dest``; return the files written. With ``expected_digest``
    the copy is verified as a model version pinned to it (``artifacts.verify``) and removed when it
    is not one; raises ``artifacts.IntegrityError`` then."""
    files = _copy(uri, dest)
    if expected_digest is not None:
        try:
            artifacts.verify(dest, expected_digest=expected_digest)
        except artifacts.IntegrityError:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            raise
    return files


def _copy(uri: str, dest: pathlib.Path) -> list[pathlib.Path]:
    dest.mkdir(parents=True, exist_ok=True)
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("", "file"):
        return _copy_local(pathlib.Path(urllib.parse.unquote(parsed.path) if parsed.scheme else uri), dest)
    if parsed.scheme == "s3":
        return _copy_s3(parsed.netloc, parsed.path.lstrip("/"), dest)
    if parsed.scheme in ("http", "https"):
        target = storage.within(dest, pathlib.PurePosixPath(parsed.path).name or "model", source=uri)
        with urllib.request.urlopen(uri, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
        return [target]
    raise ValueError(f"storageUri {uri!r}: scheme {parsed.scheme!r} is not supported locally (use file://, s3:// or http(s)://)")


def _copy_local(source: pathlib.Path, dest: pathlib.Path) -> list[pathlib.Path]:
    if source.is_file():
        target = dest / source.name
        shutil.copy2(source, target)
        return [target]
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())
    raise FileNotFoundError(f"storageUri: {source} does not exist")


def _s3_client():
    import boto3  # deferred: only s3:// models need it
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint and os.environ.get("S3_ENDPOINT"):
        scheme = "http" if os.environ.get("S3_USE_HTTPS") == "0" else "https"
        endpoint = f"{scheme}://{os.environ['S3_ENDPOINT']}"
    verify = os.environ.get("S3_VERIFY_SSL") != "0"
    config = None
    if os.environ.get("awsAnonymousCredential", "").lower() == "true":  # noqa: SIM112 (KServe's own name)
        from botocore import UNSIGNED

        config = Config(signature_version=UNSIGNED)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        verify=verify,
        config=config,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def _copy_s3(bucket: str, key: str, dest: pathlib.Path) -> list[pathlib.Path]:
    client = _s3_client()
    planned: list[tuple[str, pathlib.Path]] = []  # every key is checked before the first one is written
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents") or []:
            name = item["Key"]
            if name == key:  # the URI names one object
                relative = pathlib.PurePosixPath(name).name
            elif name.startswith(key.rstrip("/") + "/") or not key:
                relative = name[len(key.rstrip("/")) :].lstrip("/")
            else:  # a sibling sharing the prefix text (model-1 vs model-10)
                continue
            if not relative or name.endswith("/"):
                continue
            planned.append((name, storage.within(dest, relative, source=f"s3://{bucket}/{name}")))
    if not planned:
        raise FileNotFoundError(f"storageUri: no object at s3://{bucket}/{key}")
    for name, target in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, name, str(target))
    return [target for _, target in planned]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m mlkube.local.runtime.storage_initializer <storageUri> <dest>", file=sys.stderr)
        return 2
    uri, dest = argv
    try:
        files = fetch(uri, containerpath.resolve(dest), expected_digest=artifacts.pinned_digest())
    except Exception as e:
        # The model server's wording for the same refusal, so that either one reads the same in the status.
        failed = (
            "refusing to serve {}: integrity check failed: {}"
            if isinstance(e, artifacts.IntegrityError)
            else "failed to fetch {}: {}"
        )
        message = failed.format(uri, e)
        print(message, file=sys.stderr)
        termination_log = containerpath.resolve("/dev/termination-log")
        if termination_log.parent.is_dir():
            termination_log.write_text(message)
        return 1
    print(f"copied {len(files)} file(s) from {uri} to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
