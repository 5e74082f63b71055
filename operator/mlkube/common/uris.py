"""Storage URIs compared as paths: whether one names something strictly inside another.

A deletion must reach nothing outside the prefix it was meant for, whatever the URI says: a ``..``
or ``.`` segment, a doubled slash (a different key in S3), a percent-encoded dot in a file path,
a query, another bucket or another scheme. Such a URI is inside nothing.

Dependency-free: the operator, which plans the deletion of a retired version's artifacts, and the
Job that carries it out (``mlkube.purge``, through ``mlkube.ml.storage``) both decide with it.
"""

from __future__ import annotations

import urllib.parse


def segments(uri: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(scheme, authority, path segments)`` of a ``file://`` or ``s3://`` URI (a bare absolute
    path is a file path), or None when it is neither or has a segment that is empty, ``.`` or
    ``..``, a query or a fragment. A trailing slash is not a segment."""
    if uri.startswith("/"):
        uri = "file://" + uri
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("file", "s3") or parts.query or parts.fragment or "?" in uri or "#" in uri:
        return None
    authority, path = parts.netloc, parts.path
    if parts.scheme == "file":
        if authority not in ("", "localhost"):
            return None
        authority, path = "", urllib.parse.unquote(path)  # what storage.local_path opens
    elif not authority:
        return None
    names = path.removeprefix("/").removesuffix("/").split("/") if path.strip("/") else []
    if any(name in ("", ".", "..") for name in names):
        return None
    return parts.scheme, authority, tuple(names)


def is_inside(uri: str, prefix: str) -> bool:
    """Whether ``uri`` names something strictly below ``prefix`` (not ``prefix`` itself): same
    scheme, same bucket, and ``prefix``'s segments followed by at least one more."""
    inner, outer = segments(uri), segments(prefix)
    if inner is None or outer is None or inner[:2] != outer[:2]:
        return False
    return len(inner[2]) > len(outer[2]) and inner[2][: len(outer[2])] == outer[2]


def join(uri: str, name: str) -> str:
    """``join("s3://b/models", "runs")`` -> ``"s3://b/models/runs"``."""
    return uri.rstrip("/") + "/" + name
