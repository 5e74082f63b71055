"""The model-version artifact layout: the only code that writes, verifies and loads it.

A model version is a directory (`file://` path or `s3://bucket/prefix/`) holding
`model.joblib` (the fitted scikit-learn Pipeline), `model_card.json` (for machines),
`model_card.html` (the same card for people, `mlkube.ml.cardpage`), `metrics.json`,
`reference.parquet` and, written LAST, `MANIFEST.json`:
`{"algorithm": "sha256", "files": {"model.joblib": "<hex>", ...}}`. The version's digest is
`"sha256:" + sha256(MANIFEST.json bytes)`. A directory without a manifest is an interrupted
write, not a version; a missing, extra or altered file makes the version invalid.

Writes are atomic: for `file://` the files are staged in a hidden sibling directory that is
renamed into place; for `s3://` any old manifest is removed first and the new one is put
last. This module does not build cards or metrics; it stores what it is given, and the page
`cardpage` renders from the card, so that every version carries both and the manifest pins both.

The manifest vouches for the files, and the registry vouches for the manifest: a loader given
the version's digest from the registry (`expected_digest`, see `mlkube.api.artifact`) compares
it with the manifest's before it reads anything else, so rewriting files and manifest together
is refused. Only `load` unpickles, and only the trainer (the champion), the model server and the
batch-scoring pods (`mlkube.batch`) call it; readers that need the card or the reference use `read_verified`, which never touches
`model.joblib`. joblib and pandas are imported where they are used, so that verifying (the
storage initializer, drift analysis) stays light.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlkube.api import artifact as artifact_api
from mlkube.ml import cardpage, errors, storage

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = "MANIFEST.json"
MODEL = "model.joblib"
CARD = artifact_api.CARD
CARD_PAGE = artifact_api.CARD_PAGE
METRICS = "metrics.json"
REFERENCE = "reference.parquet"
REFERENCE_MAX_ROWS = 10_000


class IntegrityError(errors.MLError):
    """A model version is incomplete or altered; the message names the offending file."""


@dataclasses.dataclass(frozen=True)
class ArtifactInfo:
    """Where a version was written and what it holds."""

    uri: str
    digest: str
    files: dict[str, str]


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A verified, loaded model version."""

    pipeline: Any
    card: dict[str, Any]
    manifest: dict[str, Any]
    digest: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(manifest_bytes: bytes) -> str:
    """The version digest: `"sha256:" + sha256(MANIFEST.json bytes)`."""
    return "sha256:" + sha256_hex(manifest_bytes)


def pinned_digest() -> str | None:
    """The digest this process was told to expect (`$MLKUBE_MODEL_DIGEST`, set by the operator on
    the InferenceService), or None when it was given none."""
    return os.environ.get(artifact_api.DIGEST_ENV) or None


def check_digest(manifest_bytes: bytes, expected_digest: str | None, *, where: str) -> str:
    """The digest of `manifest_bytes`; raises IntegrityError naming both digests when it is not
    `expected_digest` (None: nothing is pinned, the manifest is taken on its own word)."""
    actual = digest_of(manifest_bytes)
    if expected_digest is not None and actual != expected_digest:
        raise IntegrityError(
            f"{where}: {MANIFEST} has digest {actual}, but the registry expects {expected_digest}; "
            "the version was rewritten after it was registered: refusing to read it"
        )
    return actual


def parse_manifest(manifest_bytes: bytes, *, where: str) -> dict[str, Any]:
    """The manifest document; raises IntegrityError when it is not `{"algorithm": "sha256", "files": {...}}`."""
    try:
        manifest = json.loads(manifest_bytes)
        listed = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(listed, dict):
            raise ValueError("expected {'algorithm': 'sha256', 'files': {...}}")
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"{where}: unreadable manifest: {e}") from e
    return manifest


def to_json_bytes(document: Any) -> bytes:
    """Canonical JSON as stored in a version (sorted keys, UTF-8, trailing newline)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def serialise(*, pipeline: Any, card: dict, metrics: dict, reference: pd.DataFrame) -> dict[str, bytes]:
    """The files of a version, except its manifest, as bytes (the card's HTML page rendered from `card`)."""
    import joblib

    if len(reference) > REFERENCE_MAX_ROWS:
        raise ValueError(f"reference has {len(reference)} rows; at most {REFERENCE_MAX_ROWS} are stored")
    model = io.BytesIO()
    joblib.dump(pipeline, model)
    ref = io.BytesIO()
    reference.to_parquet(ref, index=False)
    return {
        MODEL: model.getvalue(),
        CARD: to_json_bytes(card),
        CARD_PAGE: cardpage.render(card).encode(),
        METRICS: to_json_bytes(metrics),
        REFERENCE: ref.getvalue(),
    }


def manifest_bytes(files: dict[str, bytes]) -> bytes:
    return to_json_bytes({"algorithm": "sha256", "files": {name: sha256_hex(data) for name, data in sorted(files.items())}})


def write(
    dest_uri: str,
    *,
    pipeline: Any,
    card: dict,
    metrics: dict,
    reference: pd.DataFrame,
    storage_options: storage.Options | None = None,
) -> ArtifactInfo:
    """Write a complete model version to `dest_uri`, manifest last; replaces a previous write there."""
    files = serialise(pipeline=pipeline, card=card, metrics=metrics, reference=reference)
    manifest = manifest_bytes(files)
    if storage.scheme_of(dest_uri) == "file":
        _write_local(storage.local_path(dest_uri), files, manifest)
    else:
        # A reader that finds no manifest ignores the prefix, so removing an old one first makes
        # the overwrite of a retried run safe; the new manifest goes in only when all files are in.
        manifest_uri = storage.join(dest_uri, MANIFEST)
        storage.delete(manifest_uri, options=storage_options)
        for name, data in files.items():
            storage.write_bytes(storage.join(dest_uri, name), data, options=storage_options)
        storage.write_bytes(manifest_uri, manifest, options=storage_options)
    hexes = json.loads(manifest)["files"]
    return ArtifactInfo(uri=dest_uri, digest=digest_of(manifest), files=hexes)


def _write_local(dest: pathlib.Path, files: dict[str, bytes], manifest: bytes) -> None:
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.staging-"))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a model store is read by other processes
        for name, data in {**files, MANIFEST: manifest}.items():
            (staging / name).write_bytes(data)
        if dest.exists():
            # A retried run writes to the same URI: move the old version aside, then swap in the new.
            retired = pathlib.Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.retired-"))
            os.replace(dest, retired / dest.name)
            os.replace(staging, dest)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, dest)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise errors.StorageError(f"file://{dest}: cannot write the model version: {e.strerror or e}") from e


def verify(local_dir: str | os.PathLike[str], *, expected_digest: str | None = None) -> dict[str, Any]:
    """The manifest of the version in `local_dir`, after checking its digest against
    `expected_digest` (first, before any other file is read) and every file against it."""
    root = pathlib.Path(local_dir)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise IntegrityError(f"{root}: no {MANIFEST}; this is not a complete model version (an interrupted write?)")
    raw = manifest_path.read_bytes()
    check_digest(raw, expected_digest, where=str(root))
    listed = parse_manifest(raw, where=str(manifest_path))["files"]
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    missing, extra = sorted(set(listed) - present), sorted(present - set(listed))
    if missing:
        raise IntegrityError(f"{root / missing[0]}: listed in {MANIFEST} but missing")
    if extra:
        raise IntegrityError(f"{root / extra[0]}: not listed in {MANIFEST}; the version was altered")
    for name, expected in sorted(listed.items()):
        actual = sha256_hex((root / name).read_bytes())
        if actual != expected:
            raise IntegrityError(f"{root / name}: sha256 {actual} does not match {expected} in {MANIFEST}")
    return json.loads(raw)


def load(local_dir: str | os.PathLike[str], *, expected_digest: str | None = None) -> ModelVersion:
    """Verify (against `expected_digest`, the registry's, when given), then load the version in
    `local_dir`. The one place a model is unpickled: call it only in the trainer, the model server
    and batch scoring, each with the registry's digest."""
    import joblib

    root = pathlib.Path(local_dir)
    manifest = verify(root, expected_digest=expected_digest)
    card = json.loads((root / CARD).read_bytes())
    pipeline = joblib.load(root / MODEL)
    return ModelVersion(pipeline=pipeline, card=card, manifest=manifest, digest=digest_of((root / MANIFEST).read_bytes()))


def read_verified(
    uri: str, names: Iterable[str], *, expected_digest: str, storage_options: storage.Options | None = None
) -> dict[str, bytes]:
    """The bytes of the files `names` of the version at `uri`, straight from the store: the manifest
    is read first and checked against `expected_digest`, then each file against the manifest.
    Nothing else is read (in particular not `model.joblib`) and nothing is written locally."""
    try:
        raw = storage.read_bytes(storage.join(uri, MANIFEST), options=storage_options)
    except errors.ObjectNotFound as e:
        raise IntegrityError(f"{uri}: no {MANIFEST}; this is not a complete model version (an interrupted write?)") from e
    check_digest(raw, expected_digest, where=uri)
    listed = parse_manifest(raw, where=storage.join(uri, MANIFEST))["files"]
    files = {}
    for name in names:
        if name not in listed:
            raise IntegrityError(f"{storage.join(uri, name)}: not listed in {MANIFEST}; this is not a complete model version")
        data = storage.read_bytes(storage.join(uri, name), options=storage_options)
        if sha256_hex(data) != listed[name]:
            raise IntegrityError(
                f"{storage.join(uri, name)}: sha256 {sha256_hex(data)} does not match {listed[name]} in {MANIFEST}"
            )
        files[name] = data
    return files


def download(
    uri: str,
    local_dir: str | os.PathLike[str],
    *,
    storage_options: storage.Options | None = None,
    expected_digest: str | None = None,
) -> pathlib.Path:
    """Copy the version at `uri` (every object under it) into `local_dir`; call `verify` or `load` next.

    The manifest comes first and, with `expected_digest`, is checked before anything else is
    fetched. An object whose name would land outside `local_dir` (`../x`, `/etc/x`) is refused
    with `storage.UnsafeName` before anything is written."""
    root = pathlib.Path(local_dir)
    names = storage.list_prefix(uri, options=storage_options)
    if MANIFEST not in names:
        raise IntegrityError(f"{uri}: no {MANIFEST}; this is not a complete model version (an interrupted write?)")
    files = [n for n in names if n and not n.endswith("/")]  # "dir/" objects are folder markers, not files
    targets = {name: storage.within(root, name, source=storage.join(uri, name)) for name in files}
    root.mkdir(parents=True, exist_ok=True)
    manifest = storage.read_bytes(storage.join(uri, MANIFEST), options=storage_options)
    check_digest(manifest, expected_digest, where=uri)
    for name in sorted(set(files) - {MANIFEST}):
        target = targets[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(storage.join(uri, name), options=storage_options))
    targets[MANIFEST].write_bytes(manifest)
    return root
