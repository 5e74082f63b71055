"""A batch run's output: each shard's part and failures file, its record, and the run's manifest.

The layout and the records are ``mlkube.api.scoring``'s. Every object a run writes carries its
token, and a shard's objects have fixed names, so a shard that is retried (its pod killed, the
node lost) replaces what an earlier attempt wrote: no row is written twice. Each object is
written whole (a local file uploaded at once: ``storage.upload``), so a reader never sees half a
part.

The run is committed by the shard that, after writing its record, finds the records of every
shard: it sums them, and unless too many rows failed validation it removes what other runs of
the same layout left under the prefix (``overwrite``) and writes ``_manifest.json`` last. Shards
that finish at once may both commit; they write the same manifest. A run that starts under
``overwrite`` first removes another run's manifest, so a reader never sees one listing a mix of
two runs; under ``error`` it refuses to start when the prefix holds anything it did not write.

Kubernetes-free; storage through ``storage`` only.
"""

from __future__ import annotations

import csv
import pathlib
import re

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mlkube.api import scoring
from mlkube.ml import errors, storage

_OTHER_RUNS = re.compile(
    r"^(part-\d{5}-[0-9a-f]{8}\.(parquet|csv)|failures/part-\d{5}-[0-9a-f]{8}\.csv|_shards/\d{5}-[0-9a-f]{8}\.json)$"
)
FAILURE_COLUMNS = ("source", "row", "column", "reason")
DICTIONARY_COLUMNS = ["prediction"]


class OutputExists(errors.DataError):
    """``output.mode: error`` and the prefix holds objects this run did not write."""


def is_ours(name: str, token: str) -> bool:
    """Whether object ``name`` (relative to the output prefix) is one this run writes (or a
    temporary file of one, being written)."""
    base = name.rsplit("/", 1)[-1]
    return f"-{token}." in base or (base.startswith(".") and token in base)


def prepare(uri: str, token: str, *, mode: str, options: storage.Options | None = None) -> None:
    """Make the prefix ready for this run's shards: refuse under ``error`` when it holds objects of
    anything else; under ``overwrite`` remove another run's manifest."""
    names = storage.list_prefix(uri, options=options)
    manifest_is_ours = scoring.MANIFEST in names and _manifest_token(uri, options) == token
    foreign = [n for n in names if not is_ours(n, token) and not (n == scoring.MANIFEST and manifest_is_ours)]
    if not foreign:
        return
    if mode == "error":
        raise OutputExists(
            f"output.uri: {uri} already holds {len(foreign)} objects this run did not write (e.g. {foreign[0]}); "
            "set spec.output.mode: overwrite to replace another run's output, or choose another output.uri"
        )
    if scoring.MANIFEST in foreign:
        storage.delete(storage.join(uri, scoring.MANIFEST), options=options)


class PartWriter:
    """Streams a shard's scored rows into a local file; ``finish`` uploads it whole."""

    def __init__(self, directory: pathlib.Path, fmt: str) -> None:
        self.path = directory / f"part.{fmt}"
        self.fmt = fmt
        self.rows = 0
        self._writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._schema = table.schema
            if self.fmt == "parquet":
                # Dictionary pages only for the few prediction values: trying them on ids and
                # probabilities costs a third of the write and saves nothing.
                self._writer = pq.ParquetWriter(self.path, table.schema, use_dictionary=DICTIONARY_COLUMNS)
            else:
                self._writer = pa_csv.CSVWriter(self.path, table.schema)
        elif table.schema != self._schema:
            table = _conformed(table, self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def finish(self, uri: str, *, options: storage.Options | None = None) -> bool:
        """Close the file and upload it to ``uri``; False (nothing written) when no row was scored."""
        if self._writer is None:
            return False
        self._writer.close()
        storage.upload(uri, self.path, options=options)
        return True


class FailureWriter:
    """Streams a shard's refused rows (source, row, column, reason) into a local CSV file."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.path = directory / "failures.csv"
        self.rows = 0
        self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed by finish)
        self._csv = csv.writer(self._file)
        self._csv.writerow(FAILURE_COLUMNS)

    def write(self, source: str, row: int, column: str, reason: str) -> None:
        self._csv.writerow((source, row, column, reason))
        self.rows += 1

    def finish(self, uri: str, *, options: storage.Options | None = None) -> bool:
        """Close the file and upload it to ``uri``; False (nothing written) when no row failed."""
        self._file.close()
        if not self.rows:
            return False
        storage.upload(uri, self.path, options=options)
        return True


def write_record(uri: str, result: scoring.ShardResult, token: str, *, options: storage.Options | None = None) -> None:
    """Write shard ``result.index``'s record: the shard's part is complete."""
    name = scoring.record_name(result.index, token)
    storage.write_bytes(storage.join(uri, name), result.model_dump_json(by_alias=True).encode(), options=options)


def commit(
    request: scoring.ScoringRequest, token: str, *, digest: str, options: storage.Options | None = None
) -> scoring.Totals | None:
    """Commit the run if every shard has written its record: the run's totals, with the manifest
    written unless too many rows failed validation; None while a shard has not finished."""
    uri = request.output.uri
    present = set(storage.list_prefix(storage.join(uri, scoring.SHARDS_DIR), options=options))
    wanted = [scoring.record_name(i, token) for i in range(request.shards)]
    if any(name.removeprefix(scoring.SHARDS_DIR) not in present for name in wanted):
        return None
    records = [
        scoring.ShardResult.model_validate_json(storage.read_bytes(storage.join(uri, name), options=options)) for name in wanted
    ]
    scored, failed = sum(r.rows_scored for r in records), sum(r.rows_failed for r in records)
    totals = scoring.Totals(rows_scored=scored, rows_failed=failed, reasons=scoring.merged(r.reasons for r in records))
    if scoring.too_many_failed(scored, failed, request.max_failed_rows):
        return totals
    if request.output.mode == "overwrite":
        for name in storage.list_prefix(uri, options=options):
            if _OTHER_RUNS.match(name) and not is_ours(name, token):
                storage.delete(storage.join(uri, name), options=options)
    manifest = scoring.Manifest(
        run=f"{request.run.namespace}/{request.run.name}",
        token=token,
        model_version=request.model.version,
        digest=digest,
        format=request.output.format,
        rows_scored=scored,
        rows_failed=failed,
        parts=[scoring.Part(name=r.part, rows=r.rows_scored, shard=r.index) for r in records if r.part],
        failures=[scoring.failures_name(r.index, token) for r in records if r.rows_failed],
    )
    body = manifest.model_dump_json(by_alias=True, indent=2).encode()
    storage.write_bytes(storage.join(uri, scoring.MANIFEST), body, options=options)
    return totals.model_copy(update={"manifest": scoring.MANIFEST})


def read_manifest(uri: str, *, options: storage.Options | None = None) -> scoring.Manifest:
    """The manifest of the run whose output is at ``uri``."""
    return scoring.Manifest.model_validate_json(storage.read_bytes(storage.join(uri, scoring.MANIFEST), options=options))


def _manifest_token(uri: str, options: storage.Options | None) -> str | None:
    try:
        return read_manifest(uri, options=options).token
    except (errors.ObjectNotFound, ValueError):
        return None


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the part's first schema (a passthrough column typed differently in another file)."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise errors.DataError(
            f"output: a chunk's columns {table.schema.to_string(show_schema_metadata=False)!r} do not match the part's "
            f"{schema.to_string(show_schema_metadata=False)!r} ({e}); give the passthrough columns one type in every input file"
        ) from e
