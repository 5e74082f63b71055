"""URI-based object I/O for `file://`, `s3://` and (read-only) `http(s)://`.

The one place in the ML core that touches a file system, an object store or the network.
Callers pass URIs and get bytes; they never see paths, boto3 clients or HTTP responses.

- `file:///abs/path` (a bare absolute path is accepted too). Writes are atomic: the bytes go
  to a temporary sibling that is renamed over the destination.
- `s3://bucket/key` through boto3. The endpoint comes from `Options.endpoint`, else from
  `AWS_ENDPOINT_URL` or `S3_ENDPOINT`; credentials come from the standard AWS environment
  variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never from a spec. With
  `Options(default_credentials=False)` nothing else is consulted (no config files, web identity
  or instance profile): without those two variables requests go unsigned (anonymous).
- `http://`, `https://`: read and exists only.

Large objects are streamed: `open_input` gives a seekable binary reader whose memory does not
grow with the object (an S3 object is read with ranged GETs through a bounded buffer), and
`upload` stores a local file whole, atomically (rename for files; one upload, multipart when
large, which S3 makes visible only once complete).

Object names listed under a prefix are the store's to choose: `within` is the one check that a
name, joined to a local directory, stays inside it (no `..`, no absolute name). `delete_prefix`
removes everything under a prefix; `require_inside` is the check a caller makes first that the
prefix lies strictly inside the one it may delete in.

Failures raise `errors.ObjectNotFound`, `errors.AccessDenied` or `errors.StorageError`, with
the URI in the message. This module knows nothing of data formats or model versions.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from mlkube.common import uris
from mlkube.ml import errors

HTTP_TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Options:
    """How to reach a store: the S3 endpoint (None: environment, then AWS's default), and whether
    boto3's default credential chain may be used when the environment holds no keys."""

    endpoint: str | None = None
    default_credentials: bool = True


class UnsafeName(errors.StorageError):
    """An object name that would land outside the local directory it is copied into."""


def within(root: str | os.PathLike[str], name: str, *, source: str = "") -> pathlib.Path:
    """The local path of object ``name`` under ``root``; raises UnsafeName (naming ``source``, the
    object's URI, and the root) when the name is absolute or climbs out of ``root``."""
    base = pathlib.Path(root).resolve()
    parts = pathlib.PurePosixPath(name).parts
    target = base.joinpath(*parts).resolve() if parts else base
    if pathlib.PurePosixPath(name).is_absolute() or ".." in parts or target == base or not target.is_relative_to(base):
        raise UnsafeName(f"{source or name}: object name {name!r} escapes the local directory {base}; refused")
    return target


def require_inside(uri: str, prefix: str) -> None:
    """Raise UnsafeName unless ``uri`` names something strictly inside ``prefix`` (``uris.is_inside``:
    same scheme and bucket, no ``..``, ``.`` or empty segment) and, for files, still does once
    symbolic links are resolved."""
    if not uris.is_inside(uri, prefix):
        raise UnsafeName(f"{uri}: not strictly inside {prefix.rstrip('/')}/; refused")
    if scheme_of(uri) == "file":
        target, base = local_path(uri).resolve(), local_path(prefix).resolve()
        if target == base or not target.is_relative_to(base):
            raise UnsafeName(f"{uri}: resolves to {target}, which is not inside {base}; refused")


def scheme_of(uri: str) -> str:
    """`"s3"`, `"file"`, `"http"` or `"https"`; raises StorageError for anything else."""
    if uri.startswith("/"):
        return "file"
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme not in ("file", "s3", "http", "https"):
        raise errors.StorageError(f"{uri}: unsupported URI scheme {scheme!r}; use s3://, file:// or http(s)://")
    return scheme


def join(uri: str, name: str) -> str:
    """`join("s3://b/runs/1", "model.joblib")` -> `"s3://b/runs/1/model.joblib"`."""
    return uri.rstrip("/") + "/" + name


def local_path(uri: str) -> pathlib.Path:
    """The file-system path of a `file://` URI (or bare absolute path)."""
    if uri.startswith("/"):
        return pathlib.Path(uri)
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "file":
        raise errors.StorageError(f"{uri}: not a file:// URI")
    if parts.netloc not in ("", "localhost"):
        raise errors.StorageError(f"{uri}: file URIs take an absolute path, as in file:///data/table.csv")
    return pathlib.Path(urllib.parse.unquote(parts.path))


def read_bytes(uri: str, *, options: Options | None = None) -> bytes:
    """The whole object at `uri`."""
    scheme = scheme_of(uri)
    if scheme == "file":
        path = local_path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise errors.ObjectNotFound(f"{uri}: no such file") from e
        except IsADirectoryError as e:
            raise errors.StorageError(f"{uri}: is a directory, expected a file") from e
        except PermissionError as e:
            raise errors.AccessDenied(f"{uri}: permission denied") from e
    if scheme == "s3":
        bucket, key = _bucket_key(uri)
        return _s3_call(uri, lambda s3: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), options)
    return _http_get(uri)


def write_bytes(uri: str, data: bytes, *, options: Options | None = None) -> None:
    """Store `data` at `uri`, replacing what is there; atomic for files and S3 objects."""
    scheme = scheme_of(uri)
    if scheme == "file":
        path = local_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except PermissionError as e:
            raise errors.AccessDenied(f"{uri}: permission denied") from e
        except OSError as e:
            raise errors.StorageError(f"{uri}: cannot write: {e.strerror or e}") from e
        return
    if scheme == "s3":
        bucket, key = _bucket_key(uri)
        _s3_call(uri, lambda s3: s3.put_object(Bucket=bucket, Key=key, Body=data), options)
        return
    raise errors.StorageError(f"{uri}: http(s) URIs are read-only; write to s3:// or file://")


READ_BUFFER_BYTES = 8 * 1024 * 1024  # one ranged GET fills this much of an S3 reader's buffer


def open_input(uri: str, *, options: Options | None = None) -> io.BufferedIOBase:
    """A seekable binary reader of the object at `uri` (file:// or s3://); close it when done.
    An S3 object is fetched in ranged GETs of at most `READ_BUFFER_BYTES`, so memory stays bounded."""
    scheme = scheme_of(uri)
    if scheme == "file":
        try:
            return open(local_path(uri), "rb")
        except FileNotFoundError as e:
            raise errors.ObjectNotFound(f"{uri}: no such file") from e
        except PermissionError as e:
            raise errors.AccessDenied(f"{uri}: permission denied") from e
    if scheme == "s3":
        bucket, key = _bucket_key(uri)
        size = _s3_call(uri, lambda s3: s3.head_object(Bucket=bucket, Key=key)["ContentLength"], options)
        return io.BufferedReader(_S3Range(uri, bucket, key, size, options), buffer_size=READ_BUFFER_BYTES)
    raise errors.StorageError(f"{uri}: streaming reads take s3:// or file:// URIs")


class _S3Range(io.RawIOBase):
    """The raw side of an S3 object reader: each read is one ranged GET."""

    def __init__(self, uri: str, bucket: str, key: str, size: int, options: Options | None) -> None:
        self.uri, self.bucket, self.key, self.size, self.options = uri, bucket, key, size, options
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, start + offset)
        return self.position

    def readinto(self, buffer) -> int:
        if self.position >= self.size or len(buffer) == 0:
            return 0
        end = min(self.position + len(buffer), self.size) - 1
        ranged = f"bytes={self.position}-{end}"
        data = _s3_call(
            self.uri, lambda s3: s3.get_object(Bucket=self.bucket, Key=self.key, Range=ranged)["Body"].read(), self.options
        )
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def upload(uri: str, source: str | os.PathLike[str], *, options: Options | None = None) -> None:
    """Store the local file `source` at `uri`, replacing what is there, atomically: a reader sees the
    old object or the whole new one (file: a temporary sibling renamed over it; S3: one upload)."""
    scheme = scheme_of(uri)
    if scheme == "file":
        path = local_path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as target, open(source, "rb") as data:
                shutil.copyfileobj(data, target, 1024 * 1024)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are read by other processes
            os.replace(tmp, path)
        except PermissionError as e:
            raise errors.AccessDenied(f"{uri}: permission denied") from e
        except OSError as e:
            raise errors.StorageError(f"{uri}: cannot write: {e.strerror or e}") from e
        return
    if scheme == "s3":
        import boto3

        bucket, key = _bucket_key(uri)
        try:
            _s3_call(uri, lambda s3: s3.upload_file(str(source), bucket, key), options)
        except boto3.exceptions.S3UploadFailedError as e:  # upload_file wraps the ClientError in text
            denied = "AccessDenied" in str(e) or "InvalidAccessKeyId" in str(e) or "SignatureDoesNotMatch" in str(e)
            raise (errors.AccessDenied if denied else errors.StorageError)(f"{uri}: upload failed: {e}") from e
        return
    raise errors.StorageError(f"{uri}: http(s) URIs are read-only; write to s3:// or file://")


def delete(uri: str, *, options: Options | None = None) -> None:
    """Remove the object at `uri`; a missing object is not an error."""
    scheme = scheme_of(uri)
    if scheme == "file":
        local_path(uri).unlink(missing_ok=True)
    elif scheme == "s3":
        bucket, key = _bucket_key(uri)
        _s3_call(uri, lambda s3: s3.delete_object(Bucket=bucket, Key=key), options)
    else:
        raise errors.StorageError(f"{uri}: http(s) URIs are read-only")


def delete_prefix(uri: str, *, options: Options | None = None) -> int:
    """Remove every object under the prefix ``uri`` (recursively, ``uri`` taken as a directory: the
    prefix ``runs/a`` never touches ``runs/ab``); the number of objects removed. A missing or empty
    prefix removes nothing and is not an error, so a deletion that was interrupted can be repeated.
    A file path that is a symbolic link is refused, and links inside it are removed, not followed."""
    scheme = scheme_of(uri)
    if scheme == "file":
        root = local_path(uri)
        if not root.exists() and not root.is_symlink():
            return 0
        if root.is_symlink() or not root.is_dir():
            raise errors.StorageError(f"{uri}: is not a directory; refused")
        count = sum(1 for p in root.rglob("*") if not p.is_dir() or p.is_symlink())
        try:
            shutil.rmtree(root)
        except PermissionError as e:
            raise errors.AccessDenied(f"{uri}: permission denied: {e.filename}") from e
        except OSError as e:
            raise errors.StorageError(f"{uri}: cannot delete: {e.strerror or e}") from e
        return count
    if scheme == "s3":
        bucket, prefix = _bucket_key(uri)
        prefix = prefix.rstrip("/") + "/"

        def delete_all(s3) -> int:
            count = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if not keys:
                    continue
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                failed = answer.get("Errors") or []
                if failed:
                    first = failed[0]
                    kind = errors.AccessDenied if first.get("Code") == "AccessDenied" else errors.StorageError
                    raise kind(
                        f"{uri}: {len(failed)} of {len(keys)} objects not deleted; s3://{bucket}/{first.get('Key')}: "
                        f"{first.get('Code')} {first.get('Message', '')}".rstrip()
                    )
                count += len(keys)
            return count

        return _s3_call(uri, delete_all, options)
    raise errors.StorageError(f"{uri}: http(s) URIs are read-only")


def exists(uri: str, *, options: Options | None = None) -> bool:
    """Whether an object (or, for files, a file or directory) is at `uri`."""
    scheme = scheme_of(uri)
    if scheme == "file":
        return local_path(uri).exists()
    if scheme == "s3":
        bucket, key = _bucket_key(uri)
        try:
            _s3_call(uri, lambda s3: s3.head_object(Bucket=bucket, Key=key), options)
        except errors.ObjectNotFound:
            return False
        return True
    try:
        _http_get(uri, method="HEAD")
    except errors.ObjectNotFound:
        return False
    return True


def list_prefix(uri: str, *, options: Options | None = None) -> list[str]:
    """Names of the objects under the prefix `uri`, relative to it, sorted (recursive)."""
    scheme = scheme_of(uri)
    if scheme == "file":
        root = local_path(uri)
        if not root.is_dir():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    if scheme == "s3":
        bucket, prefix = _bucket_key(uri, allow_empty_key=True)
        prefix = prefix.rstrip("/") + "/" if prefix else ""

        def list_all(s3) -> list[str]:
            names = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                names.extend(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
            return sorted(names)

        return _s3_call(uri, list_all, options)
    raise errors.StorageError(f"{uri}: http(s) URIs cannot be listed")


def _bucket_key(uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or (not key and not allow_empty_key):
        raise errors.StorageError(f"{uri}: an S3 URI needs a bucket and a key, as in s3://bucket/path/table.csv")
    return bucket, key


def _endpoint(options: Options | None) -> str | None:
    if options is not None and options.endpoint:
        return options.endpoint
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("S3_ENDPOINT") or None


# The environment variables a boto3 client captures when it is made: a client is reused only
# while they are unchanged (credentials rotate, tests and the local runtime switch endpoints).
_CLIENT_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")


def _s3_client(options: Options | None):
    default_chain = options is None or options.default_credentials
    return _cached_client(_endpoint(options), tuple(os.environ.get(name) for name in _CLIENT_ENV), default_chain)


def _anonymous(options: Options | None) -> bool:
    """Whether requests go unsigned: the default chain is refused and the environment has no keys."""
    keys = os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")
    return options is not None and not options.default_credentials and not keys


@functools.lru_cache(maxsize=8)
def _cached_client(endpoint: str | None, environment: tuple, default_chain: bool):
    import boto3  # imported lazily: file-only users (and the model server on files) skip its start-up cost
    import botocore
    from botocore import config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    settings = {"retries": {"max_attempts": 5, "mode": "standard"}, "connect_timeout": 10, "read_timeout": 120}
    keys = dict(zip(("aws_access_key_id", "aws_secret_access_key", "aws_session_token"), environment[:3]))
    if default_chain:
        session = boto3.session.Session()  # its own: the default session would keep the credentials it resolved first
    elif keys["aws_access_key_id"] and keys["aws_secret_access_key"]:
        session = boto3.session.Session(**keys)  # explicit keys: the chain is never consulted
    else:
        session = boto3.session.Session()
        settings["signature_version"] = botocore.UNSIGNED  # no keys and no chain: anonymous requests
    return session.client("s3", endpoint_url=endpoint, region_name=region, config=config.Config(**settings))


def _s3_call(uri: str, call, options: Options | None):
    from botocore import exceptions

    try:
        return call(_s3_client(options))
    except exceptions.ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
            what = "bucket does not exist" if code == "NoSuchBucket" else "no such object"
            raise errors.ObjectNotFound(f"{uri}: {what}") from e
        if (code in ("AccessDenied", "403") or status in (401, 403)) and _anonymous(options):
            raise errors.AccessDenied(
                f"{uri}: access denied ({code}) to an anonymous request: no S3 credentials were given and the default "
                "credential chain is not used; set the project's spec.storage.credentialsSecret (or "
                "spec.storage.useDefaultCredentials: true to use the pod's own AWS identity)"
            ) from e
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status in (401, 403):
            raise errors.AccessDenied(
                f"{uri}: access denied ({code}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy"
            ) from e
        raise errors.StorageError(f"{uri}: S3 error {code}: {e}") from e
    except exceptions.NoCredentialsError as e:
        raise errors.AccessDenied(f"{uri}: no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from e
    except exceptions.BotoCoreError as e:
        raise errors.StorageError(f"{uri}: cannot reach the S3 endpoint {_endpoint(options) or '(AWS default)'}: {e}") from e


def _http_get(uri: str, *, method: str = "GET") -> bytes:
    request = urllib.request.Request(uri, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise errors.ObjectNotFound(f"{uri}: HTTP 404 not found") from e
        if e.code in (401, 403):
            raise errors.AccessDenied(f"{uri}: HTTP {e.code}; the server refused access") from e
        raise errors.StorageError(f"{uri}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise errors.StorageError(f"{uri}: cannot fetch: {getattr(e, 'reason', e)}") from e
