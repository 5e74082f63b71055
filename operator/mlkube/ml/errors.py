"""The ML core's error taxonomy: what went wrong, and whether retrying can help.

Every message names the URI, column or spec field at fault and says what to fix. The trainer
maps these to its result (`reason`) and exit code: input errors are not worth retrying, the
rest may be. This module holds no logic.
"""

from __future__ import annotations


class MLError(Exception):
    """Base of every error the ML core raises on purpose."""


class StorageError(MLError):
    """An object store or file system could not be read or written (possibly transient)."""


class ObjectNotFound(StorageError):
    """The URI names nothing: a missing file, bucket or key, or an HTTP 404."""


class AccessDenied(StorageError):
    """The store refused the credentials (HTTP 401/403, S3 AccessDenied)."""


class DataError(MLError):
    """The training data is unusable as given: missing, unreadable, empty, or not matching the spec."""


class InvalidSpec(MLError):
    """The resolved spec contradicts itself or the registry (e.g. a metric that does not fit the task)."""


class TrainingFailed(MLError):
    """Training could not produce a model (every trial failed, the time budget allowed none)."""
