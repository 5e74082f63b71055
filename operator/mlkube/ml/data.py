"""Training data: read a table from a URI, aggregate joined sources, check it against the problem.

Owns the formats (CSV, Parquet), the `data.join` semantics, the snapshot digest, the lineage of
each source read (sha256 of its bytes, its rows) and the checks that turn a bad table into one
clear `errors.DataError` naming the URI, column or field and what to fix. It does not split, transform or profile (see `profile`), and reaches storage only
through `storage`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
import pandas as pd

from mlkube.api import project, training
from mlkube.ml import errors, storage

PARQUET_MAGIC = b"PAR1"


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


def parse_table(uri: str, data: bytes) -> pd.DataFrame:
    """A DataFrame from the bytes of a `.csv` or `.parquet` object (by extension, else by content)."""
    path = uri.split("?", 1)[0].lower()
    is_parquet = path.endswith((".parquet", ".pq")) or (not path.endswith(".csv") and data[:4] == PARQUET_MAGIC)
    try:
        if is_parquet:
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError as e:
        raise errors.DataError(f"{uri}: the file is empty; it needs a header row and at least one data row") from e
    except Exception as e:
        kind = "Parquet" if is_parquet else "CSV"
        raise errors.DataError(
            f"{uri}: cannot read it as {kind} ({type(e).__name__}: {e}); provide a valid .csv or .parquet file"
        ) from e


def read_source(uri: str, *, options: storage.Options | None = None) -> tuple[pd.DataFrame, training.DataLineage]:
    """The table at `uri` and its lineage: the sha256 of the bytes read (the object is read once and
    both parsed and hashed from memory) and the rows parsed from them. Every storage failure becomes
    a DataError that says what to fix."""
    try:
        data = storage.read_bytes(uri, options=options)
    except errors.ObjectNotFound as e:
        raise errors.DataError(f"{e}; check data.uri (and that the object was uploaded)") from e
    except errors.AccessDenied as e:
        raise errors.DataError(f"{e}; check data.credentialsSecret") from e
    table = parse_table(uri, data)
    if table.empty:
        raise errors.DataError(f"{uri}: the table has no rows; training needs data")
    read = training.DataLineage(uri=uri, digest="sha256:" + hashlib.sha256(data).hexdigest(), rows=len(table))
    return table, read


def load(source: training.DataSource) -> Snapshot:
    """Read `source` and its `join` sources into one table, with its digest and each source's lineage."""
    options = storage.Options(endpoint=source.endpoint)
    table, read = read_source(source.uri, options=options)
    sources = [read]
    for index, extra in enumerate(source.join):
        other, read = read_source(extra.uri, options=options)
        sources.append(read)
        table = combine(table, other, extra, field=f"data.join[{index}]")
    if table.empty:
        raise errors.DataError(f"{source.uri}: no rows are left after data.join; check the join keys and how")
    return Snapshot(uri=source.uri, table=table.reset_index(drop=True), digest=digest(table), sources=tuple(sources))


def combine(left: pd.DataFrame, right: pd.DataFrame, join: training.JoinSource, *, field: str) -> pd.DataFrame:
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


def check(table: pd.DataFrame, problem: project.Problem, preprocessing: training.Preprocessing, *, uri: str) -> None:
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
