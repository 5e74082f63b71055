"""A batch input split between shards, and each shard's rows read in bounded chunks.

The input is one object or a prefix of objects (``list_inputs``: the objects under it whose
names end in the format's suffix, in name order). Its *units* are what a shard reads whole: a
CSV or CSV.gz file, or one row group of a Parquet file, so that the row groups of one large
Parquet file are split between shards. ``assign`` gives each shard its units, the same way in
every shard (each computes it alone from the same listing): the heaviest unit first to the
least loaded shard (bytes for CSV, rows for Parquet), then each shard's units back in input
order. ``read`` streams a unit as Arrow record batches of at most ``chunk_rows`` rows, each with
the row number (within its file) of its first row: memory depends on the chunk, not the input.

CSV has no types: every column is read as text (empty cells and the usual null markers are
null) and the schema decides what a cell must be (``mlkube.serving.schema``). Parquet columns
keep their types.

Kubernetes-free; storage is reached through ``storage`` only.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import io
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mlkube.ml import errors, storage

SUFFIXES = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet"}
CSV_BLOCK_BYTES = 4 * 1024 * 1024  # what Arrow's CSV reader parses at a time (it reads a few ahead): about 100,000 rows


class InputError(errors.DataError):
    """The input cannot be scored as asked; the message names the object and what to fix."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """What one shard reads whole: a file, or one row group of a Parquet file."""

    uri: str
    name: str
    """The object's name relative to the input URI (its file name for a single file)."""
    order: int
    """Its position in the input: file by file, row group by row group."""
    weight: int
    """Bytes (CSV) or rows (Parquet row group): what ``assign`` balances."""
    row_group: int | None = None
    first_row: int = 0
    """The row number, within its file, of the unit's first row."""


def list_inputs(uri: str, fmt: str, *, options: storage.Options | None = None) -> list[tuple[str, str]]:
    """(URI, name) of every object of the input: ``uri`` itself when it is an object, else the
    objects under the prefix whose names end in the format's suffix, sorted by name."""
    suffix = SUFFIXES[fmt]
    if not uri.endswith("/") and storage.exists(uri, options=options) and not _is_dir(uri):
        return [(uri, uri.rstrip("/").rsplit("/", 1)[-1])]
    prefix = uri if uri.endswith("/") else uri + "/"
    names = [n for n in storage.list_prefix(prefix, options=options) if n.endswith(suffix) and not _hidden(n)]
    if not names:
        raise InputError(f"input.uri: {uri} holds no {fmt} objects (names ending in {suffix}); check the uri and format")
    return [(storage.join(prefix, n), n) for n in names]


def units(objects: Sequence[tuple[str, str]], fmt: str, *, options: storage.Options | None = None) -> list[Unit]:
    """The units of the input ``objects`` (``list_inputs``)."""
    found: list[Unit] = []
    for uri, name in objects:
        if fmt != "parquet":
            with storage.open_input(uri, options=options) as stream:
                size = stream.seek(0, io.SEEK_END)
            found.append(Unit(uri, name, len(found), size))
            continue
        with _parquet(uri, options) as handle:
            metadata = handle.metadata
        first = 0
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            found.append(Unit(uri, name, len(found), rows, row_group=group, first_row=first))
            first += rows
    return found


def assign(all_units: Sequence[Unit], shards: int) -> list[list[Unit]]:
    """Each shard's units: heaviest first to the least loaded shard (ties: the lower shard), then
    in input order. Deterministic: every shard computes the same assignment."""
    loads, given = [0] * shards, [[] for _ in range(shards)]
    for unit in sorted(all_units, key=lambda u: (-u.weight, u.order)):
        target = min(range(shards), key=lambda s: (loads[s], s))
        loads[target] += unit.weight
        given[target].append(unit)
    return [sorted(units_, key=lambda u: u.order) for units_ in given]


def header(unit: Unit, fmt: str, *, options: storage.Options | None = None) -> list[str]:
    """The column names of a unit's file."""
    if fmt == "parquet":
        with _parquet(unit.uri, options) as handle:
            return list(handle.schema_arrow.names)
    try:
        with _text_stream(unit.uri, fmt, options) as stream:
            line = stream.readline().decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as e:  # not gzip, truncated, not text
        raise InputError(f"{unit.uri}: not readable as {fmt} ({e})") from e
    if not line.strip():
        raise InputError(f"{unit.uri}: empty file; a CSV input needs a header row")
    return next(csv.reader([line]))


def read(
    unit: Unit, fmt: str, columns: Sequence[str], *, chunk_rows: int, options: storage.Options | None = None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The unit's rows of ``columns``, as (row number of the first row within its file, batch) of
    at most ``chunk_rows`` rows, in order."""
    if fmt == "parquet":
        first = unit.first_row
        with _parquet(unit.uri, options) as handle:
            for batch in handle.iter_batches(batch_size=chunk_rows, row_groups=[unit.row_group], columns=list(columns)):
                yield first, batch
                first += batch.num_rows
        return
    convert = pa_csv.ConvertOptions(
        column_types={c: pa.string() for c in columns}, include_columns=list(columns), strings_can_be_null=True
    )
    first = 0
    with _text_stream(unit.uri, fmt, options) as stream:
        try:
            reader = pa_csv.open_csv(stream, read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES), convert_options=convert)
            for batch in reader:
                for offset in range(0, batch.num_rows, chunk_rows):
                    part = batch.slice(offset, chunk_rows)
                    yield first, part
                    first += part.num_rows
        except (pa.ArrowInvalid, OSError, EOFError) as e:  # a malformed row, a truncated or corrupt gzip stream
            raise InputError(f"{unit.uri}: not readable as {fmt} after data row {first}: {e}") from e


@contextlib.contextmanager
def _parquet(uri: str, options: storage.Options | None) -> Iterator[pq.ParquetFile]:
    with storage.open_input(uri, options=options) as source:
        try:
            handle = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"{uri}: not readable as Parquet ({e}); provide a valid .parquet file") from e
        with handle:
            yield handle


@contextlib.contextmanager
def _text_stream(uri: str, fmt: str, options: storage.Options | None) -> Iterator[io.BufferedIOBase]:
    with storage.open_input(uri, options=options) as raw:
        if fmt != "csv.gz":
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            yield unpacked


def _is_dir(uri: str) -> bool:
    return storage.scheme_of(uri) == "file" and storage.local_path(uri).is_dir()


def _hidden(name: str) -> bool:
    """Markers and hidden files (``_SUCCESS``, ``.part``) are not input."""
    return any(part.startswith(("_", ".")) for part in name.split("/"))
