"""Where a TrainingJob's data comes from, and how much of it the search sees.

``spec.data`` of the TrainingJob kind and of the MLProject (``api/training.py``,
``api/project.py``): the source object or prefix of parts, the tables joined into it, and the
seeded sample the hyper-parameter search runs on. Plain data with their validation; the CRD
schema is generated from them, so their wire names are the API. Reading the data is the ML
core's (``ml/data.py``).
"""

from __future__ import annotations

from typing import Literal

import pydantic

from mlkube.api import base


class JoinSource(base.ApiModel):
    """Another table aggregated into the training table."""

    uri: str = pydantic.Field(pattern=r"^(s3|file|https?)://")
    """Where the table lives: s3://, file:// or http(s)://, a .csv or .parquet object."""
    on: str | None = None
    """Key column to join on; leave empty with how: concat to append rows."""
    how: Literal["left", "inner", "outer", "right", "concat"] = "left"
    """left, inner, outer or right join on the key, or concat to append the rows."""

    @pydantic.model_validator(mode="after")
    def _key_unless_concat(self) -> JoinSource:
        if self.how != "concat" and not self.on:
            raise ValueError(f"on: a key column is required for a {self.how} join (or use how: concat)")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.how) && self.how == 'concat') || has(self.on)",
                    "message": "on: a key column is required unless how is concat",
                }
            ]
        }
    )


class Sample(base.ApiModel):
    """How much of the training partition the hyper-parameter search sees."""

    rows: int | None = pydantic.Field(None, ge=10)
    """At most this many rows."""
    fraction: float | None = pydantic.Field(None, gt=0, le=1)
    """This share of the rows, in (0, 1]."""

    @pydantic.model_validator(mode="after")
    def _one(self) -> Sample:
        if (self.rows is None) == (self.fraction is None):
            raise ValueError("set exactly one of rows or fraction")
        return self

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "has(self.rows) != has(self.fraction)", "message": "set exactly one of rows or fraction"}
            ]
        }
    )

    def size(self, available: int) -> int:
        """Rows the search sees out of ``available``."""
        wanted = self.rows if self.rows is not None else round(available * (self.fraction or 1.0))
        return max(1, min(available, wanted))


class DataSource(base.ApiModel):
    """Where the training data lives."""

    uri: str = pydantic.Field(pattern=r"^(s3|file|https?)://")
    """s3://, file:// or http(s):// URI of a .csv, .csv.gz or .parquet object; or, ending in /, an
    s3:// or file:// prefix whose .parquet/.csv/.csv.gz objects are the parts of one table."""
    format: Literal["csv", "parquet"] | None = None
    """How to read the data: csv (also gzip-compressed) or parquet. Unset: by each object's
    extension, else its content. Set on a prefix: only parts of that format are read."""
    credentials_secret: str | None = None
    """Secret in the same namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    endpoint: str | None = None
    """Endpoint of an S3-compatible store such as MinIO."""
    join: list[JoinSource] = []
    """More sources aggregated into one table, in order."""
    sample: Sample | None = None
    """The hyper-parameter search runs on a seeded sample of the training partition (stratified for
    classification), e.g. {rows: 50000} or {fraction: 0.1}; the chosen configuration is then fit on
    the whole partition and evaluated as usual. Classification and regression only."""

    @pydantic.field_validator("uri")
    @classmethod
    def _prefix_needs_a_listable_store(cls, uri: str) -> str:
        if uri.startswith(("http://", "https://")) and uri.split("?", 1)[0].endswith("/"):
            raise ValueError("an http(s) URI names one object; a prefix of parts (ending in /) needs s3:// or file://")
        return uri

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.uri.startsWith('http') && self.uri.endsWith('/'))",
                    "message": "uri: a prefix of parts (ending in /) needs s3:// or file://",
                }
            ]
        }
    )
