"""Training data: read a table from a URI, aggregate joined sources, check it against the problem.

Owns the formats (CSV, CSV.gz, Parquet; one object or a prefix of parts, see `partitions`), the
column projection, the `data.join` semantics, the snapshot digest, the lineage of
each source read (sha256 of its bytes, its rows) and the checks that turn a bad table into one
clear `errors.DataError` naming the URI, column or field and what to fix. It does not split, transform or profile (see `profile`), and reaches storage only
through `storage`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlkube.api import datasource, project, training
from mlkube.api import preprocessing as preprocessing_api
from mlkube.ml import errors, partitions, storage

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"

Columns = Callable[[str], bool]
"""Which columns of a source to keep (a projection); None keeps all."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The training table as loaded, before any processing, and the sources it was read from."""

    uri: str
    table: pd.DataFrame
    digest: str
    sources: tuple[training.DataLineage, ...] = ()
    """Each source read (data.uri, then data.join[] in order): its URI, the sha256 of its bytes and its rows."""

    @property
    def rows(self) -> int:
        return len(self.table)

    @property
    def columns(self) -> int:
        return self.table.shape[1]


def parse_table(uri: str, data: bytes, *, columns: Columns | None = None, fmt: str | None = None) -> pd.DataFrame:
    """A DataFrame from the bytes of a `.csv`, `.csv.gz` or `.parquet` object (``fmt``, else by
    extension, else by content), keeping the ``columns`` the projection wants (all when None)."""
    path = uri.split("?", 1)[0].lower()
    if fmt is not None:
        is_parquet = fmt == "parquet"
    else:
        is_parquet = path.endswith((".parquet", ".pq")) or (not path.endswith((".csv", ".gz")) and data[:4] == PARQUET_MAGIC)
    try:
        if is_parquet:
            kept = None
            if columns is not None:
                kept = [c for c in pq.read_schema(io.BytesIO(data)).names if columns(c)]
            return pd.read_parquet(io.BytesIO(data), columns=kept)
        compression = "gzip" if data[:2] == GZIP_MAGIC else None
        return pd.read_csv(io.BytesIO(data), usecols=columns, compression=compression)
    except pd.errors.EmptyDataError as e:
        raise errors.DataError(f"{uri}: the file is empty; it needs a header row and at least one data row") from e
    except Exception as e:
        kind = "Parquet" if is_parquet else "CSV"
        raise errors.DataError(
            f"{uri}: cannot read it as {kind} ({type(e).__name__}: {e}); provide a valid .csv or .parquet file"
        ) from e


def read_source(
    uri: str,
    *,
    options: storage.Options | None = None,
    columns: Columns | None = None,
    memory_limit: int | None = None,
    fmt: str | None = None,
) -> tuple[pd.DataFrame, training.DataLineage]:
    """The table at `uri` (an object, or a prefix of parts) and its lineage, keeping the projected
    ``columns``: for an object the sha256 of the bytes read (read once, parsed and hashed from
    memory); for a prefix one entry over its parts. A source estimated too large for
    ``memory_limit`` (bytes, see `partitions.check_budget`) is refused before it is read. Every
    storage failure becomes a DataError that says what to fix."""
    if partitions.is_prefix(uri):
        parts = partitions.parts_of(uri, fmt=fmt, options=options)
        partitions.check_budget(parts, memory_limit=memory_limit, uri=uri)
        return _read_parts(uri, parts, columns=columns, fmt=fmt, options=options)
    if memory_limit is not None and storage.scheme_of(uri) in ("file", "s3"):
        part = _measured(uri, fmt, options)
        partitions.check_budget([part], memory_limit=memory_limit, uri=uri)
    try:
        data = storage.read_bytes(uri, options=options)
    except errors.ObjectNotFound as e:
        raise errors.DataError(f"{e}; check data.uri (and that the object was uploaded)") from e
    except errors.AccessDenied as e:
        raise errors.DataError(f"{e}; check data.credentialsSecret") from e
    table = parse_table(uri, data, columns=columns, fmt=fmt)
    if table.empty:
        raise errors.DataError(f"{uri}: the table has no rows; training needs data")
    read = training.DataLineage(uri=uri, digest="sha256:" + hashlib.sha256(data).hexdigest(), rows=len(table))
    return table, read


def _measured(uri: str, fmt: str | None, options: storage.Options | None) -> partitions.Part:
    try:
        return partitions.measure(uri, uri.rsplit("/", 1)[-1], fmt=fmt, options=options)
    except errors.ObjectNotFound as e:
        raise errors.DataError(f"{e}; check data.uri (and that the object was uploaded)") from e
    except errors.AccessDenied as e:
        raise errors.DataError(f"{e}; check data.credentialsSecret") from e


def _read_parts(
    prefix: str,
    parts: Sequence[partitions.Part],
    *,
    columns: Columns | None,
    fmt: str | None,
    options: storage.Options | None,
) -> tuple[pd.DataFrame, training.DataLineage]:
    """The table of all ``parts`` of ``prefix``, read one at a time and appended in name order; they
    must share their columns. Its lineage: the prefix, a sha256 over each part's name and sha256,
    the rows of all parts."""
    tables, manifest = [], hashlib.sha256()
    for part in parts:
        table, read = read_source(part.uri, options=options, columns=columns, fmt=fmt)
        if tables and set(table.columns) != set(tables[0].columns):
            differ = sorted(set(table.columns) ^ set(tables[0].columns))
            raise errors.DataError(
                f"data.uri: the parts under {prefix} must share their columns; {part.name} differs from "
                f"{parts[0].name} in {', '.join(map(str, differ[:10]))}"
            )
        tables.append(table[tables[0].columns] if tables else table)
        manifest.update(f"{part.name}\x00{read.digest}\n".encode())
    table = pd.concat(tables, ignore_index=True)
    return table, training.DataLineage(uri=prefix, digest="sha256:" + manifest.hexdigest(), rows=len(table))


def needed_columns(
    problem: project.Problem,
    preprocessing: preprocessing_api.Preprocessing,
    source: datasource.DataSource,
    *,
    keep: Sequence[str] = (),
) -> Columns | None:
    """The projection a training needs: with `problem.features.include`, those columns, the target,
    the time columns (a forecast's timeColumn and seriesId, the split's timeColumn), the join keys and ``keep`` (e.g. sensitive features). None without an
    include list: every column is read (`problem.features.exclude` is checked against them)."""
    if problem.features.include is None:
        return None
    wanted = {*keep, *(j.on for j in source.join if j.on), *problem.features.include}
    wanted.update(c for c in (problem.target, problem.time_column, problem.series_id) if c)
    if preprocessing.split.time_column:
        wanted.add(preprocessing.split.time_column)
    return wanted.__contains__


def load(source: datasource.DataSource, *, columns: Columns | None = None, memory_limit: int | None = None) -> Snapshot:
    """Read `source` and its `join` sources into one table, with its digest and each source's
    lineage, keeping the projected ``columns``; each source is held to ``memory_limit`` (bytes)."""
    options = storage.Options(endpoint=source.endpoint)
    table, read = read_source(source.uri, options=options, columns=columns, memory_limit=memory_limit, fmt=source.format)
    sources = [read]
    for index, extra in enumerate(source.join):
        other, read = read_source(extra.uri, options=options, columns=columns, memory_limit=memory_limit)
        sources.append(read)
        table = combine(table, other, extra, field=f"data.join[{index}]")
    if table.empty:
        raise errors.DataError(f"{source.uri}: no rows are left after data.join; check the join keys and how")
    return Snapshot(uri=source.uri, table=table.reset_index(drop=True), digest=digest(table), sources=tuple(sources))


def combine(left: pd.DataFrame, right: pd.DataFrame, join: datasource.JoinSource, *, field: str) -> pd.DataFrame:
    """`left` with `right` appended (`how: concat`) or joined on `join.on`."""
    if join.how == "concat":
        missing = sorted(set(left.columns) ^ set(right.columns))
        if missing:
            raise errors.DataError(
                f"{field} ({join.uri}): concat needs the same columns in both tables; only one has {', '.join(missing)}"
            )
        return pd.concat([left, right[left.columns]], ignore_index=True)
    for name, frame in (("the main table", left), (join.uri, right)):
        if join.on not in frame.columns:
            raise errors.DataError(f"{field}.on: column {join.on!r} does not exist in {name}; columns are {_listing(frame)}")
    if right[join.on].duplicated().any():
        raise errors.DataError(
            f"{field} ({join.uri}): key {join.on!r} is not unique in the "
            "joined table, which would duplicate rows; aggregate it first"
        )
    return left.merge(right, on=join.on, how=join.how, suffixes=("", f"_{field.replace('.', '_')}"))


def with_feedback(snapshot: Snapshot, labeled: pd.DataFrame, *, target: str) -> Snapshot:
    """`snapshot` plus captured traffic that received ground truth (feature columns and `target`);
    its `sources` stay those of the data read from storage.

    Ground truth arrives as JSON, so it is converted to the target column's type (numbers for a
    numeric target, else the class whose text matches); rows whose label cannot be converted are
    dropped. Columns the traffic lacks (excluded columns, the time column) are left missing.
    """
    labeled = typed_labels(labeled, like=snapshot.table[target], target=target)
    if labeled.empty:
        return snapshot
    table = pd.concat([snapshot.table, labeled.reindex(columns=snapshot.table.columns)], ignore_index=True)
    return dataclasses.replace(snapshot, table=table, digest=digest(table))


def typed_labels(labeled: pd.DataFrame, *, like: pd.Series, target: str) -> pd.DataFrame:
    """`labeled` with its JSON ground truth converted to the type of the target column `like`
    (numbers for a numeric target, else the class whose text matches); unconvertible rows dropped."""
    if labeled.empty:
        return labeled
    truth = labeled[target]
    if pd.api.types.is_numeric_dtype(like) and not pd.api.types.is_bool_dtype(like):
        truth = pd.to_numeric(truth, errors="coerce")
    else:
        classes = {str(c): c for c in like.dropna().unique()}
        truth = truth.map(lambda v: classes.get(str(v)))
    return labeled.assign(**{target: truth.to_numpy()}).dropna(subset=[target])


def digest(table: pd.DataFrame) -> str:
    """`"sha256:<hex>"` of the table's column names, dtypes and values (row order matters)."""
    h = hashlib.sha256()
    for name, dtype in table.dtypes.items():
        h.update(f"{name}\x00{dtype}\x01".encode())
    try:
        hashes = pd.util.hash_pandas_object(table, index=False)
    except TypeError:  # unhashable cells (lists, dicts from Parquet): hash their text instead
        hashes = pd.util.hash_pandas_object(table.astype(str), index=False)
    h.update(hashes.to_numpy().tobytes())
    return "sha256:" + h.hexdigest()


def feature_columns(table: pd.DataFrame, problem: project.Problem, *, time_column: str | None = None) -> list[str]:
    """The feature columns: `include`, or every column but the target, `exclude` and the time column."""
    if problem.features.include is not None:
        return list(problem.features.include)
    dropped = {problem.target, *problem.features.exclude, *([time_column] if time_column else [])}
    return [c for c in table.columns if c not in dropped]


def check(table: pd.DataFrame, problem: project.Problem, preprocessing: preprocessing_api.Preprocessing, *, uri: str) -> None:
    """Refuse a table that cannot train the problem, naming the column or field and what to fix."""
    columns = set(table.columns)
    named = {"problem.target": [problem.target]}
    named["problem.features.include"] = problem.features.include or []
    named["problem.features.exclude"] = problem.features.exclude
    named["preprocessing.bins"] = [b.column for b in preprocessing.bins]
    named["preprocessing.split.timeColumn"] = [preprocessing.split.time_column] if preprocessing.split.time_column else []
    for field, names in named.items():
        for name in names:
            if name not in columns:
                raise errors.DataError(f"{field}: column {name!r} does not exist in {uri}; columns are {_listing(table)}")
    target = table[problem.target]
    if target.notna().sum() == 0:
        raise errors.DataError(f"{uri}: target column {problem.target!r} has no values")
    if problem.target in (problem.features.include or []):
        raise errors.DataError(f"problem.features.include: the target {problem.target!r} cannot also be a feature")
    if problem.task == "classification":
        classes = target.dropna().unique()
        if len(classes) < 2:
            raise errors.DataError(
                f"{uri}: target column {problem.target!r} has a single class ({classes[0]!r}); classification needs at least two"
            )
        if problem.positive_class is not None and problem.positive_class not in {str(c) for c in classes}:
            raise errors.DataError(
                f"problem.positiveClass: {problem.positive_class!r} is not a value of {problem.target!r}; "
                f"values are {', '.join(sorted(str(c) for c in classes)[:20])}"
            )
    elif not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        raise errors.DataError(
            f"{uri}: target column {problem.target!r} is {target.dtype}, "
            "not numeric; regression needs a numeric target "
            "(or set problem.task: classification)"
        )
    features = feature_columns(table, problem, time_column=preprocessing.split.time_column)
    if not features:
        raise errors.DataError(f"problem.features: no feature columns are left in {uri}; include at least one column")
    for bin_spec in preprocessing.bins:
        if not pd.api.types.is_numeric_dtype(table[bin_spec.column]) or bin_spec.column not in features:
            raise errors.DataError(
                f"preprocessing.bins: column {bin_spec.column!r} must be a numeric feature column to be binned"
            )
    unusable = [c for c in features if not _is_supported(table[c])]
    if unusable:
        raise errors.DataError(
            f"{uri}: feature column(s) {', '.join(unusable)} hold dates or nested values; exclude them in "
            "problem.features.exclude or use one as preprocessing.split.timeColumn"
        )


def _is_supported(column: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
        return False
    if column.dtype != object:
        return True
    return not column.map(lambda v: isinstance(v, (list, dict, np.ndarray))).any()


def _listing(table: pd.DataFrame, limit: int = 30) -> str:
    names = [str(c) for c in table.columns]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
