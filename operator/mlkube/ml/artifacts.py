"""The model-version artifact layout: the only code that writes, verifies and loads it.

A model version is a directory (`file://` path or `s3://bucket/prefix/`) holding
`model.joblib` (the fitted scikit-learn Pipeline), `model_card.json`, `metrics.json`,
`reference.parquet` and, written LAST, `MANIFEST.json`:
`{"algorithm": "sha256", "files": {"model.joblib": "<hex>", ...}}`. The version's digest is
`"sha256:" + sha256(MANIFEST.json bytes)`. A directory without a manifest is an interrupted
write, not a version; a missing, extra or altered file makes the version invalid.

Writes are atomic: for `file://` the files are staged in a hidden sibling directory that is
renamed into place; for `s3://` any old manifest is removed first and the new one is put
last. This module does not build cards or metrics; it stores what it is given.
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
from typing import Any

import joblib
import pandas as pd

from mlkube.ml import errors, storage

MANIFEST = "MANIFEST.json"
MODEL = "model.joblib"
CARD = "model_card.json"
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


def to_json_bytes(document: Any) -> bytes:
    """Canonical JSON as stored in a version (sorted keys, UTF-8, trailing newline)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


def serialise(*, pipeline: Any, card: dict, metrics: dict, reference: pd.DataFrame) -> dict[str, bytes]:
    """The files of a version, except its manifest, as bytes."""
    if len(reference) > REFERENCE_MAX_ROWS:
        raise ValueError(f"reference has {len(reference)} rows; at most {REFERENCE_MAX_ROWS} are stored")
    model = io.BytesIO()
    joblib.dump(pipeline, model)
    ref = io.BytesIO()
    reference.to_parquet(ref, index=False)
    return {
        MODEL: model.getvalue(),
        CARD: to_json_bytes(card),
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


def verify(local_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the version in `local_dir`, after checking every file against it."""
    root = pathlib.Path(local_dir)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise IntegrityError(f"{root}: no {MANIFEST}; this is not a complete model version (an interrupted write?)")
    try:
        manifest = json.loads(manifest_path.read_bytes())
        listed = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(listed, dict):
            raise ValueError("expected {'algorithm': 'sha256', 'files': {...}}")
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"{manifest_path}: unreadable manifest: {e}") from e
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
    return manifest


def load(local_dir: str | os.PathLike[str]) -> ModelVersion:
    """Verify, then load the version in `local_dir`."""
    root = pathlib.Path(local_dir)
    manifest = verify(root)
    card = json.loads((root / CARD).read_bytes())
    pipeline = joblib.load(root / MODEL)
    return ModelVersion(pipeline=pipeline, card=card, manifest=manifest, digest=digest_of((root / MANIFEST).read_bytes()))


def download(uri: str, local_dir: str | os.PathLike[str], *, storage_options: storage.Options | None = None) -> pathlib.Path:
    """Copy the version at `uri` (every object under it) into `local_dir`; call `verify` or `load` next."""
    root = pathlib.Path(local_dir)
    names = storage.list_prefix(uri, options=storage_options)
    if MANIFEST not in names:
        raise IntegrityError(f"{uri}: no {MANIFEST}; this is not a complete model version (an interrupted write?)")
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(storage.join(uri, name), options=storage_options))
    return root
