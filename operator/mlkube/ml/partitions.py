"""Training data that does not fit one file: which objects of a prefix are its parts, and the
memory budget every source is held to before it is read (``data`` reads them).

``data.uri`` ending in ``/`` names a prefix: every ``.parquet``/``.pq``/``.csv``/``.csv.gz``
object under it (recursively, sorted by name, skipping names with a part starting with ``_`` or
``.`` such as ``_SUCCESS`` or a writer's temporary file) is one part of the table.

Before anything is read, the table's size in memory is estimated from what the store tells
cheaply: a Parquet part's rows and column types (its footer), a gzip member's recorded
length (its last four bytes), a CSV's text. A table estimated above ``BUDGET_SHARE`` of the
trainer's memory limit is refused with the sizes in the message, instead of the pod being
OOM-killed half way through a search (training needs room for the splits, folds and models).

Kubernetes-free; storage through ``storage`` only.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import pyarrow.parquet as pq

from mlkube.ml import errors, storage

SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
FORMAT_SUFFIXES = {"parquet": (".parquet", ".pq"), "csv": (".csv", ".csv.gz")}
BUDGET_SHARE = 0.5
"""The share of the memory limit the loaded table may take; the rest is the training's room."""
CSV_EXPANSION = 2.0
"""Bytes in memory per byte of CSV text once parsed (an estimate: numbers shrink, strings grow)."""
FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 8}
"""Bytes per value in memory of Parquet's fixed-width physical types."""
TEXT_OVERHEAD = 50
"""Bytes per value a Python string object adds to its text (pandas' object columns)."""


@dataclasses.dataclass(frozen=True)
class Part:
    """One object of a source: where it is, its stored size and its estimated size in memory."""

    uri: str
    name: str
    stored: int
    in_memory: int


def is_prefix(uri: str) -> bool:
    """Whether ``data.uri`` names a prefix of parts rather than one object."""
    return uri.split("?", 1)[0].endswith("/")


def parts_of(prefix: str, *, fmt: str | None = None, options: storage.Options | None = None) -> list[Part]:
    """The parts under ``prefix`` (of format ``fmt`` only, when given) with their sizes, sorted by
    name; a DataError when there are none."""
    suffixes = FORMAT_SUFFIXES[fmt] if fmt else SUFFIXES
    try:
        names = [n for n in storage.list_prefix(prefix, options=options) if _is_part(n, suffixes)]
    except errors.AccessDenied as e:
        raise errors.DataError(f"{e}; check data.credentialsSecret") from e
    if not names:
        raise errors.DataError(
            f"data.uri: {prefix} holds no {', '.join(suffixes)} objects; check the prefix (it ends in /) "
            "or name one object without the trailing /"
        )
    return [measure(storage.join(prefix, name), name, fmt=fmt, options=options) for name in names]


def measure(uri: str, name: str, *, fmt: str | None = None, options: storage.Options | None = None) -> Part:
    """The stored and estimated in-memory size of the object ``uri`` (of format ``fmt``, else by
    its name's extension), from its footer or trailer."""
    with storage.open_input(uri, options=options) as stream:
        stored = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        lowered = name.lower()
        if fmt == "parquet" or (fmt is None and lowered.endswith((".parquet", ".pq"))):
            try:
                metadata = pq.ParquetFile(stream).metadata
            except Exception as e:
                raise errors.DataError(f"{uri}: cannot read it as Parquet ({type(e).__name__}: {e})") from e
            in_memory = parquet_in_memory(metadata)
        elif lowered.endswith(".gz") and stored >= 4:
            stream.seek(stored - 4)
            text = int.from_bytes(stream.read(4), "little")  # ISIZE: the uncompressed length mod 2**32
            in_memory = int(max(text, stored) * CSV_EXPANSION)
        else:
            in_memory = int(stored * CSV_EXPANSION)
    return Part(uri, name, stored, in_memory)


def parquet_in_memory(metadata: pq.FileMetaData) -> int:
    """A Parquet file's size once loaded, from its footer: fixed-width columns take their width per
    row (however well they were encoded and compressed), text its uncompressed bytes plus
    ``TEXT_OVERHEAD`` per value."""
    total = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        for j in range(group.num_columns):
            column = group.column(j)
            width = FIXED_WIDTH.get(column.physical_type)
            if width is not None:
                total += group.num_rows * width
            else:
                total += column.total_uncompressed_size + group.num_rows * TEXT_OVERHEAD
    return total


def check_budget(parts: Sequence[Part], *, memory_limit: int | None, uri: str) -> None:
    """Refuse a source whose estimated size in memory exceeds ``BUDGET_SHARE`` of ``memory_limit``
    (bytes; None: no limit known, nothing refused), with the sizes and what to change."""
    if memory_limit is None:
        return
    stored, in_memory = sum(p.stored for p in parts), sum(p.in_memory for p in parts)
    budget = int(memory_limit * BUDGET_SHARE)
    if in_memory <= budget:
        return
    count = f"{len(parts)} files, " if len(parts) > 1 else ""
    raise errors.DataError(
        f"data.uri: {uri} ({count}{_size(stored)} stored, about {_size(in_memory)} in memory) does not fit the "
        f"trainer's memory: the table may take {_size(budget)}, half of its {_size(memory_limit)} limit. Raise "
        "spec.resources.limits.memory, keep fewer columns with problem.features.include, or point data.uri at "
        "fewer files"
    )


def _is_part(name: str, suffixes: tuple[str, ...]) -> bool:
    if any(piece.startswith(("_", ".")) for piece in name.split("/")):
        return False
    return name.lower().endswith(suffixes)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
