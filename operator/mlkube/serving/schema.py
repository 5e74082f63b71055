"""Request validation against a model card's `featureSchema`, and the pipeline's input frame.

Owns: turning KServe V1 `instances` (objects keyed by feature name, or arrays in featureSchema
order) and V2 inputs (one per feature, or one 2-D input) into validated `Rows`, and any number
of `Rows` (one request's, or a batch of requests') into one pandas DataFrame whose columns,
order and dtypes are those the pipeline was fitted on. Every refusal is a `SchemaError` whose
message names the instance or input and the feature, and says what was expected. A sensitive
feature the model needs at prediction time (a `threshold_optimizer` mitigation decides per group;
the card marks it `sensitive` with its `groups`) is named as such when it is missing, and a group
the model has no threshold for is refused. Batch scoring applies the same rules to whole columns
(`columns.validate`), with the same messages.

Decoding goes straight from the JSON document to columns, validating in the same pass: when
every feature is numeric a request becomes one float block (a type check over all its values,
then one numpy conversion), otherwise one list of checked values per feature. No DataFrame is
built per request: `frame()` builds one for a whole batch, so a batch of requests is the frame
of one request holding all their rows (same dtypes, same values). When the fast check finds a
value that is not a number, the column-by-column pass names it, so messages do not depend on
which path ran.

Must not: load models, predict, or know about HTTP.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("numeric", "categorical", "boolean", "text")  # text: any string (problem.textColumns), TF-IDF in the pipeline
_NUMBER_TYPES = (int, float)
_NUMBER_KINDS = frozenset(_NUMBER_TYPES)


class SchemaError(ValueError):
    """A request does not match the feature schema; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Feature:
    """One column of the card's featureSchema."""

    name: str
    kind: str
    nullable: bool = False
    categories: frozenset | None = None
    categories_are_text: bool = True
    sensitive: bool = False
    groups: frozenset | None = None

    @property
    def why_required(self) -> str:
        """What a refusal adds about a feature that is required because it is sensitive."""
        if not self.sensitive:
            return ""
        return " (a sensitive feature: this model's fairness post-processing decides per group, so every request must carry it)"


@dataclasses.dataclass(frozen=True)
class Rows:
    """One request's rows, validated: `block` (float64, [count, features]) when every feature is
    numeric, else `columns`, one list of values per feature in featureSchema order."""

    count: int
    block: np.ndarray | None = None
    columns: tuple[list, ...] | None = None


class FeatureSchema:
    """The features a model expects, in the order the pipeline was fitted on."""

    def __init__(self, features: Sequence[Feature], *, reject_unknown_categories: bool = False):
        if not features:
            raise ValueError("featureSchema is empty; the model card must list the model's features")
        self.features = tuple(features)
        self.names = [f.name for f in self.features]
        self._by_name = {f.name: f for f in self.features}
        self.reject_unknown_categories = reject_unknown_categories
        self._all_numeric = all(f.kind == "numeric" for f in self.features)
        # The one-block fast check knows types only: a feature with more to check takes the column pass.
        self._fast_numeric = self._all_numeric and all(f.groups is None for f in self.features)
        self._columns_index = pd.Index(self.names)
        getter = operator.itemgetter(*self.names)
        self._values_of = getter if len(self.names) > 1 else (lambda instance: (getter(instance),))

    @classmethod
    def from_card(cls, card: dict[str, Any], *, reject_unknown_categories: bool = False) -> FeatureSchema:
        """Read `card["featureSchema"]`; raises ValueError naming the bad entry."""
        entries = card.get("featureSchema")
        if not isinstance(entries, list):
            raise ValueError("model_card.json: featureSchema must be a list of {name, type, ...}")
        features = []
        for i, entry in enumerate(entries):
            where = f"model_card.json: featureSchema[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ValueError(f"{where}: expected an object with a string 'name'")
            kind = entry.get("type")
            if kind not in KINDS:
                raise ValueError(f"{where} ({entry['name']}): type must be one of {', '.join(KINDS)}, got {kind!r}")
            categories = entry.get("categories") if kind == "categorical" else None
            features.append(
                Feature(
                    name=entry["name"],
                    kind=kind,
                    nullable=bool(entry.get("nullable", False)),
                    categories=frozenset(categories) if categories is not None else None,
                    categories_are_text=all(isinstance(c, str) for c in categories or ()),
                    sensitive=bool(entry.get("sensitive", False)),
                    groups=frozenset(map(str, entry["groups"])) if isinstance(entry.get("groups"), list) else None,
                )
            )
        return cls(features, reject_unknown_categories=reject_unknown_categories)

    # -- frames -----------------------------------------------------------------------------

    def frame(self, batch: Sequence[Rows]) -> pd.DataFrame:
        """One frame holding the rows of every `Rows` in `batch`, in order."""
        if self._all_numeric:
            block = batch[0].block if len(batch) == 1 else np.concatenate([rows.block for rows in batch])
            return pd.DataFrame(block, columns=self._columns_index, copy=False)
        if len(batch) == 1:
            columns = batch[0].columns
        else:
            columns = [list(itertools.chain.from_iterable(rows.columns[i] for rows in batch)) for i in range(len(self.names))]
        arrays = [_array(feature, values) for feature, values in zip(self.features, columns)]
        return pd.DataFrame(dict(zip(self.names, arrays)), copy=False)

    def frame_from_instances(self, instances: Any) -> pd.DataFrame:
        """The frame for V1 `instances` (see `rows_from_instances`)."""
        return self.frame([self.rows_from_instances(instances)])

    def frame_from_inputs(self, inputs: Sequence[Any]) -> pd.DataFrame:
        """The frame for V2 inputs (see `rows_from_inputs`)."""
        return self.frame([self.rows_from_inputs(inputs)])

    # -- V1 ---------------------------------------------------------------------------------

    def rows_from_instances(self, instances: Any) -> Rows:
        """The rows of V1 `instances`: all objects keyed by feature name, or all arrays."""
        if not isinstance(instances, list) or not instances:
            raise SchemaError("instances: expected a non-empty list of objects or arrays")
        if isinstance(instances[0], dict):
            if self._fast_numeric:
                try:
                    block = _number_block(list(map(self._values_of, instances)))
                except (KeyError, TypeError):  # a missing feature or an instance that is no object
                    block = None
                if block is not None:
                    return Rows(len(instances), block=block)
            return self._rows(self._columns_from_objects(instances), "instances")
        if isinstance(instances[0], list):
            if self._fast_numeric and self._is_rectangular(instances):
                block = _number_block(instances)
                if block is not None:
                    return Rows(len(instances), block=block)
            return self._rows(self._columns_from_rows(instances, "instances"), "instances")
        raise SchemaError("instances[0]: expected an object keyed by feature name or an array in featureSchema order")

    def _columns_from_objects(self, instances: list) -> list[list]:
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise SchemaError(f"instances[{i}]: expected an object keyed by feature name, like instances[0]")
        columns = []
        for name in self.names:
            try:
                columns.append([instance[name] for instance in instances])
            except KeyError:
                index = next(i for i, instance in enumerate(instances) if name not in instance)
                why = self._by_name[name].why_required
                raise SchemaError(f"instances[{index}]: missing feature '{name}'{why}") from None
        return columns

    def _is_rectangular(self, rows: list) -> bool:
        width = len(self.names)
        return all(type(row) is list and len(row) == width for row in rows)

    def _columns_from_rows(self, rows: list, where: str) -> list[list]:
        width = len(self.names)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
                raise SchemaError(f"{where}[{i}]: expected an array of {width} values in featureSchema order, got {got}")
        return [list(column) for column in zip(*rows)]

    # -- V2 ---------------------------------------------------------------------------------

    def rows_from_inputs(self, inputs: Sequence[Any]) -> Rows:
        """The rows of V2 inputs (objects with `.name`, `.shape`, `.data`).

        Either one input per feature, named after it, or a single input of shape [n, features].
        """
        if not inputs:
            raise SchemaError("inputs: expected one input per feature or one 2-D input")
        single = inputs[0]
        if len(inputs) == 1 and len(single.shape) == 2 and (len(self.names) > 1 or single.name != self.names[0]):
            return self._rows_from_matrix(single)
        by_name = {inp.name: inp for inp in inputs}
        columns, length, first = [], None, None
        for name in self.names:
            inp = by_name.get(name)
            if inp is None:
                why = self._by_name[name].why_required
                raise SchemaError(
                    f"inputs: missing input '{name}'{why} (send one input per feature, "
                    f"or one input of shape [n, {len(self.names)}] in featureSchema order)"
                )
            values = list(_flatten(inp.data))
            if length is None:
                length, first = len(values), name
            elif len(values) != length:
                raise SchemaError(f"inputs: input '{name}' has {len(values)} values, input '{first}' has {length}")
            columns.append(values)
        if self._fast_numeric:
            block = _number_block(columns)
            if block is not None:
                return Rows(length, block=block.T.copy())
        return self._rows(columns, "inputs")

    def _rows_from_matrix(self, inp: Any) -> Rows:
        rows_count, width = inp.shape
        if width != len(self.names):
            raise SchemaError(
                f"inputs: input '{inp.name}' has shape {list(inp.shape)}, expected [n, {len(self.names)}] "
                "with columns in featureSchema order"
            )
        values = list(_flatten(inp.data))
        if len(values) != rows_count * width:
            raise SchemaError(f"inputs: input '{inp.name}' has {len(values)} values, its shape needs {rows_count * width}")
        if self._fast_numeric:
            block = _number_block([values])
            if block is not None:
                return Rows(rows_count, block=block.reshape(rows_count, width))
        rows = [values[i * width : (i + 1) * width] for i in range(rows_count)]
        return self._rows(self._columns_from_rows(rows, f"inputs[{inp.name}]"), "inputs")

    # -- columns ----------------------------------------------------------------------------

    def _rows(self, columns: list[list], where: str) -> Rows:
        """Check every column (the first bad value, feature by feature, is the one named)."""
        for feature, values in zip(self.features, columns):
            self._check(feature, values, where)
        if self._all_numeric:
            return Rows(len(columns[0]), block=np.column_stack([_array(f, v) for f, v in zip(self.features, columns)]))
        return Rows(len(columns[0]), columns=tuple(columns))

    def _check(self, feature: Feature, values: list, where: str) -> None:
        for i, value in enumerate(values):
            if value is None:
                if not feature.nullable or feature.sensitive:
                    raise SchemaError(f"{where}[{i}]: {null_refusal(feature)}")
            elif not _is_valid(feature, value):
                raise SchemaError(f"{where}[{i}]: {type_refusal(feature)}, got {value!r}")
            elif feature.groups is not None and str(value) not in feature.groups:
                known = ", ".join(repr(g) for g in sorted(feature.groups)[:10])
                raise SchemaError(
                    f"{where}[{i}]: sensitive feature '{feature.name}' has group {value!r}, which the model has no "
                    f"threshold for (known: {known})"
                )
            elif (
                feature.kind == "categorical"
                and self.reject_unknown_categories
                and feature.categories is not None
                and value not in feature.categories
            ):
                raise SchemaError(f"{where}[{i}]: {unknown_refusal(feature)} {value!r} (known: {known_categories(feature)})")


def _number_block(rows: list) -> np.ndarray | None:
    """`rows` (sequences of equal length) as a float64 array when every value is an int or a float
    (not a bool, not null); None otherwise, and the column-by-column check names the bad value."""
    if not set(map(type, itertools.chain.from_iterable(rows))) <= _NUMBER_KINDS:
        return None
    return np.array(rows, dtype=np.float64)


def _array(feature: Feature, values: list) -> np.ndarray:
    """A checked column as the array the pipeline was fitted on."""
    if feature.kind == "numeric":
        return np.array(values, dtype=np.float64)  # None becomes NaN, which the imputer handles
    if feature.kind == "boolean" and None not in values:
        return np.array(values, dtype=bool)
    return np.array(values, dtype=object)


def _is_valid(feature: Feature, value: Any) -> bool:
    kind = type(value)
    if feature.kind == "numeric":
        return kind is float or kind is int
    if feature.kind == "boolean":
        return kind is bool
    if feature.categories_are_text:
        return kind is str
    return kind in _NUMBER_TYPES or kind is bool


def null_refusal(feature: Feature) -> str:
    """Why a null is refused: ``feature 'x' is null but the model does not accept nulls``."""
    return f"feature '{feature.name}' is null but the model does not accept nulls{feature.why_required}"


def type_refusal(feature: Feature) -> str:
    """Why a value of the wrong type is refused, without the value: ``feature 'x' expects a number``."""
    return f"feature '{feature.name}' {_expectation(feature)}"


def unknown_refusal(feature: Feature) -> str:
    """Why an unknown category is refused (reject mode), without the value."""
    return f"feature '{feature.name}' has unknown category"


def known_categories(feature: Feature) -> str:
    """The first known categories, as a refusal lists them."""
    return ", ".join(repr(c) for c in sorted(feature.categories or (), key=str)[:10])


def _expectation(feature: Feature) -> str:
    if feature.kind == "numeric":
        return "expects a number"
    if feature.kind == "boolean":
        return "expects true or false"
    return "expects a string" if feature.categories_are_text else "expects a number (a category code)"


def _flatten(data: Any) -> Iterable[Any]:
    if isinstance(data, np.ndarray):
        yield from data.ravel().tolist()
        return
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item
