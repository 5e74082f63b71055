"""Batch input validated with the model server's rules, a whole column at a time.

`validate(schema, columns)` takes the Arrow columns of a chunk of batch input and returns the
pipeline's frame for the rows the model server would accept, one at a time, as V1 instances
(`schema.FeatureSchema.frame_from_instances([row])`): the same features in the same order with
the same dtypes (numbers as float64 with NaN for null; booleans as bool, or objects when a null is
among them; categories as Python objects), so a row's batch prediction is its online prediction.
A refused row is reported with the server's message for it (`feature 'x' expects a number, got
'abc'`) and never fails its neighbours; a row with several problems gets its first feature's.

Where batch input differs from JSON: text (CSV cells, Parquet string columns) is read as the
feature's type first, a number or true/false; text that is not one is refused. A float NaN is a
null (JSON has none). Typed columns are checked as the server checks JSON values: a number is
not a category name, a boolean not a number.

The work is done on Arrow arrays (casts and comparisons in Arrow's kernels); a chunk pays per
value in Python only for the values it refuses. Must not: load models, predict, or read storage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlkube.serving import schema


@dataclasses.dataclass(frozen=True)
class RowFailure:
    """One refused row: its position in the chunk, the feature, and why."""

    row: int
    column: str
    reason: str
    """The server's message, e.g. ``feature 'x' expects a number, got 'abc'``."""
    kind: str
    """The message without the value (what failures are counted by), e.g. ``feature 'x' expects a number``."""


@dataclasses.dataclass(frozen=True)
class Validated:
    """A chunk's accepted rows as the pipeline's frame, and its refused rows."""

    frame: pd.DataFrame
    accepted: np.ndarray
    """Boolean mask over the chunk's rows: which are in ``frame`` (in order)."""
    failures: list[RowFailure]


def validate(features: schema.FeatureSchema, columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> Validated:
    """Validate a chunk whose ``columns`` (by name, equally long) hold at least the features.
    Raises ``schema.SchemaError`` naming a feature that has no column."""
    missing = [name for name in features.names if name not in columns]
    if missing:
        raise schema.SchemaError(f"input: no column '{missing[0]}'; the model's features are {', '.join(features.names)}")
    length = len(columns[features.names[0]])
    refused = np.zeros(length, dtype=bool)
    failures: dict[int, RowFailure] = {}
    typed = []
    for feature in features.features:
        values, bad = _column(feature, _plain(columns[feature.name]), reject_unknown=features.reject_unknown_categories)
        for row, (reason, kind) in sorted(bad.items()):
            if not refused[row]:
                refused[row] = True
                failures[row] = RowFailure(row, feature.name, reason, kind)
        typed.append(values)
    accepted = ~refused
    kept = {f.name: _dtype(f, values if refused.sum() == 0 else values[accepted]) for f, values in zip(features.features, typed)}
    return Validated(frame=pd.DataFrame(kept, copy=False), accepted=accepted, failures=[failures[r] for r in sorted(failures)])


def _plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One array, dictionaries decoded."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _column(feature: schema.Feature, array: pa.Array, *, reject_unknown: bool) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """The column typed as the server types it, and its refused rows: {row: (message, kind)}."""
    bad: dict[int, tuple[str, str]] = {}
    kind = array.type
    is_text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    is_number = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if feature.kind == "numeric":
        if is_number:
            values = _floats(array)
        elif is_text:
            values = _parsed_numbers(array, feature, bad)
        else:
            values = np.full(len(array), np.nan)
            _refuse_present(array, feature, bad)
        nulls = np.isnan(values)
    elif feature.kind == "boolean":
        values, nulls = _booleans(array, feature, bad, is_text=is_text)
    elif feature.categories_are_text:
        if is_text:
            values = _objects(array)
        else:
            values = np.full(len(array), None, dtype=object)
            _refuse_present(array, feature, bad)
        nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    else:  # category codes: numbers (or booleans), or text that reads as a number
        values, nulls = _codes(array, feature, bad, is_text=is_text, is_number=is_number)
    if not feature.nullable or feature.sensitive:
        for row in np.flatnonzero(nulls):
            bad.setdefault(int(row), (schema.null_refusal(feature),) * 2)
    if feature.groups is not None:  # a sensitive feature of a per-group post-processing: known groups only
        for row in np.flatnonzero(~nulls):
            if str(array[int(row)].as_py()) not in feature.groups:
                why = f"sensitive feature '{feature.name}' has a group the model has no threshold for"
                bad.setdefault(int(row), (f"{why}: {array[int(row)].as_py()!r}", why))
    if feature.kind == "categorical" and reject_unknown and feature.categories is not None and is_text:
        known = pc.is_in(array, value_set=pa.array(sorted(c for c in feature.categories if isinstance(c, str)), pa.string()))
        for row in np.flatnonzero(~np.asarray(known.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)):
            unknown = schema.unknown_refusal(feature)
            bad.setdefault(int(row), (f"{unknown} {values[row]!r} (known: {schema.known_categories(feature)})", unknown))
    return values, bad


def _floats(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _parsed_numbers(array: pa.Array, feature: schema.Feature, bad: dict[int, tuple[str, str]]) -> np.ndarray:
    """Text as numbers: Arrow's cast for a clean column, else value by value to find the refused ones."""
    try:
        return _floats(array)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    trimmed = pc.utf8_trim_whitespace(array)
    try:
        return _floats(trimmed)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = np.full(len(array), np.nan)
    for row, text in enumerate(trimmed.to_pylist()):
        if text is None:
            continue
        try:
            values[row] = float(text)
        except ValueError:
            bad[row] = (f"{schema.type_refusal(feature)}, got {array[row].as_py()!r}", schema.type_refusal(feature))
    return values


def _booleans(
    array: pa.Array, feature: schema.Feature, bad: dict[int, tuple[str, str]], *, is_text: bool
) -> tuple[np.ndarray, np.ndarray]:
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.full(len(array), None, dtype=object)
    if pa.types.is_boolean(array.type):
        flags = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    elif is_text:
        words = pc.utf8_lower(pc.utf8_trim_whitespace(array))
        true = np.asarray(pc.equal(words, "true").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        false = np.asarray(pc.equal(words, "false").fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        for row in np.flatnonzero(~true & ~false & ~nulls):
            bad[int(row)] = (f"{schema.type_refusal(feature)}, got {array[int(row)].as_py()!r}", schema.type_refusal(feature))
        flags = true
    else:
        _refuse_present(array, feature, bad)
        return values, nulls
    values[~nulls] = flags[~nulls].tolist() if (~nulls).any() else []
    return values, nulls


def _codes(
    array: pa.Array, feature: schema.Feature, bad: dict[int, tuple[str, str]], *, is_text: bool, is_number: bool
) -> tuple[np.ndarray, np.ndarray]:
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if is_number or pa.types.is_boolean(array.type):
        return np.array(array.to_pylist(), dtype=object), nulls
    values = np.full(len(array), None, dtype=object)
    if not is_text:
        _refuse_present(array, feature, bad)
        return values, nulls
    for row, text in enumerate(array.to_pylist()):
        if text is None:
            continue
        try:
            number = float(text.strip())
            values[row] = int(number) if number.is_integer() else number
        except ValueError:
            bad[row] = (f"{schema.type_refusal(feature)}, got {text!r}", schema.type_refusal(feature))
    return values, nulls


def _objects(array: pa.Array) -> np.ndarray:
    """A text column as Python str and None, through its dictionary (one object per distinct value)."""
    encoded = pc.dictionary_encode(array)
    words = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    indices = encoded.indices.fill_null(len(words) - 1).to_numpy(zero_copy_only=False)
    return words[indices]


def _refuse_present(array: pa.Array, feature: schema.Feature, bad: dict[int, tuple[str, str]]) -> None:
    """Refuse every non-null value of a column whose type the feature never takes."""
    for row, value in enumerate(array.to_pylist()):
        if value is not None:
            bad[row] = (f"{schema.type_refusal(feature)}, got {value!r}", schema.type_refusal(feature))


def _dtype(feature: schema.Feature, values: np.ndarray) -> np.ndarray:
    """The accepted rows' values with the dtype the server's frame gives them."""
    if feature.kind == "numeric":
        return values.astype(np.float64, copy=False)
    if feature.kind == "boolean" and not any(v is None for v in values):
        return values.astype(bool)
    return values
