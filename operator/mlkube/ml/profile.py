"""Data-quality profile of a table and the feature schema of a model's input.

The profile (missing share per column, duplicate rows, constant columns, type mismatches such
as numbers stored as strings) goes into the model card so that a user sees what the data looked
like. The feature schema tells the model server which columns, types and categories a model
accepts. Both are plain JSON-ready dicts; nothing here changes the data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# A text column counts as "numbers stored as strings" when at least this share of its values parse.
NUMERIC_TEXT_SHARE = 0.9
MAX_CATEGORIES_LISTED = 1000
# Per-value type checks look at a seeded sample of this many values per column.
TYPE_SAMPLE = 10_000


def feature_type(column: pd.Series) -> str:
    """`"boolean"`, `"numeric"` or `"categorical"`: how the pipeline treats the column."""
    if pd.api.types.is_bool_dtype(column):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    values = _sample(column.dropna())
    if len(values) and values.map(lambda v: isinstance(v, bool)).all():
        return "boolean"  # a bool column with missing values is stored as object
    return "categorical"


def of(table: pd.DataFrame) -> dict[str, Any]:
    """The data-quality profile of `table`."""
    rows = len(table)
    missing = {str(c): round(float(share), 6) for c, share in table.isna().mean().items()}
    constant = [str(c) for c in table.columns if table[c].nunique(dropna=False) <= 1]
    mismatches = {str(c): "numbers stored as strings" for c in table.columns if _is_numeric_text(table[c])}
    return {
        "rows": rows,
        "columns": int(table.shape[1]),
        "duplicateRows": int(table.duplicated().sum()) if rows else 0,
        "missingShare": missing,
        "constantColumns": constant,
        "typeMismatches": mismatches,
        "dtypes": {str(c): str(t) for c, t in table.dtypes.items()},
    }


def feature_schema(table: pd.DataFrame, columns: list[str], *, non_nullable: set[str] = frozenset()) -> list[dict[str, Any]]:
    """One entry per feature column, in order: name, type, dtype, categories (categorical), nullable."""
    schema = []
    for name in columns:
        column = table[name]
        kind = feature_type(column)
        entry: dict[str, Any] = {"name": str(name), "type": kind, "dtype": str(column.dtype)}
        if kind == "categorical":
            entry["categories"] = sorted({str(v) for v in column.dropna().unique()})[:MAX_CATEGORIES_LISTED]
        entry["nullable"] = name not in non_nullable
        schema.append(entry)
    return schema


def _is_numeric_text(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    values = _sample(column.dropna())
    values = values[values.map(lambda v: isinstance(v, str))]
    if values.empty:
        return False
    parsed = pd.to_numeric(values.str.strip(), errors="coerce")
    return bool(parsed.notna().mean() >= NUMERIC_TEXT_SHARE)


def _sample(values: pd.Series) -> pd.Series:
    return values.sample(TYPE_SAMPLE, random_state=0) if len(values) > TYPE_SAMPLE else values
