"""Helpers of the rollout acceptance tests: the local cluster as processes, kubectl, prediction
traffic through a ModelDeployment's router, and the bad versions (faulty, tampered, and constant:
valid but worse).

The cluster is the shared one of tests/integration/localcluster.py.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import pathlib
import time
from collections.abc import Iterable
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn import compose, dummy, impute, linear_model, pipeline, preprocessing

import localcluster
from localcluster import wait_for
from mlkube.ml import artifacts

PROJECT = "penguins"  # the session's MLProject
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


class RolloutCluster(localcluster.LocalCluster):
    """The shared local cluster, plus quick reads the rollout tests poll in tight loops."""

    _objects: Any = None

    def mdep_status(self, name: str, namespace: str) -> dict[str, Any]:
        """A ModelDeployment's status through the kubernetes client (quicker than kubectl in a loop)."""
        if self._objects is None:
            from kubernetes import client, config

            self._objects = client.CustomObjectsApi(config.new_client_from_config(config_file=self.kubeconfig))
        found = self._objects.get_namespaced_custom_object("mlkube.io", "v1alpha1", namespace, "modeldeployments", name)
        return found.get("status") or {}

    def items_with_prefix(self, kind: str, prefix: str, namespace: str) -> list[dict[str, Any]]:
        return [item for item in self.items(kind, namespace) if item["metadata"]["name"].startswith(prefix)]


def serving(cluster: localcluster.LocalCluster, name: str, namespace: str) -> str:
    """The router's URL once the ModelDeployment is Ready."""

    def ready() -> str | None:
        status = cluster.mdep_status(name, namespace)
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return status.get("url") if conditions.get("Ready") == "True" else None

    return wait_for(ready, 120, f"ModelDeployment {name} to serve")


def roll_to(cluster: localcluster.LocalCluster, name: str, namespace: str, version: int) -> None:
    """Ask for another version (the user's spec change that starts a rollout)."""
    cluster.kubectl(
        "patch", "mdep", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"model": {"version": version}}})
    )


def penguin_rows(csv: pathlib.Path) -> list[dict[str, Any]]:
    """Complete penguin rows as V1 instances (feature name to value)."""
    frame = pd.read_csv(csv)[FEATURES].dropna()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


class Client:
    """Sends V1 predictions to a ModelDeployment's router from a few threads; keeps every answer."""

    def __init__(self, url: str, deployment: str, *, threads: int = 4) -> None:
        self.url = f"{url}/v1/models/{deployment}:predict"
        self.http = httpx.Client(timeout=30)
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)

    def predict(self, row: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(self.url, json={"instances": [row]}, headers=headers)

    def burst(self, rows: Iterable[dict[str, Any]], headers: dict[str, str] | None = None) -> list[tuple[str | None, int]]:
        """(x-mlkube-version, status) of each row's prediction, sent concurrently."""
        answers = self.pool.map(lambda row: self.predict(row, headers), rows)
        return [(r.headers.get("x-mlkube-version"), r.status_code) for r in answers]

    def close(self) -> None:
        self.pool.shutdown()
        self.http.close()


# -- model versions --------------------------------------------------------------------------


def registry(cluster: localcluster.LocalCluster, namespace: str, project: str) -> dict[str, dict[str, Any]]:
    """The project's registered versions by TrainingJob name."""
    return {m["trainingJob"]: m for m in cluster.status("mlproject", project, namespace).get("models", [])}


def local_dir(uri: str) -> pathlib.Path:
    return pathlib.Path(uri.removeprefix("file://"))


def write_faulty_version(good_uri: str, data: pathlib.Path, dest: pathlib.Path) -> artifacts.ArtifactInfo:
    """A real model version with a real bug: it takes the log of the measurements, so a row with a
    zero measurement becomes -inf and the pipeline raises (the model server answers 500). Same
    features, classes and card as a good version; written with the trainer's artifact writer."""
    good = artifacts.load(local_dir(good_uri))
    frame = pd.read_csv(data).dropna(subset=["species"])
    numeric = pipeline.Pipeline(
        [
            ("impute", impute.SimpleImputer()),
            ("log", preprocessing.FunctionTransformer(np.log)),
            ("scale", preprocessing.StandardScaler()),
        ]
    )
    categorical = pipeline.Pipeline(
        [
            ("impute", impute.SimpleImputer(strategy="most_frequent")),
            ("onehot", preprocessing.OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    model = pipeline.Pipeline(
        [
            ("prep", compose.ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, ["island", "sex"])])),
            ("clf", linear_model.LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame[FEATURES], frame["species"])
    card = {**good.card, "algorithm": "logistic_regression", "createdAt": datetime.datetime.now(datetime.UTC).isoformat()}
    reference = pd.read_parquet(local_dir(good_uri) / artifacts.REFERENCE)
    return artifacts.write(dest.as_uri() + "/", pipeline=model, card=card, metrics={"test": {}}, reference=reference)


def write_constant_version(good_uri: str, data: pathlib.Path, dest: pathlib.Path) -> artifacts.ArtifactInfo:
    """A valid version that is simply worse: it always answers the most frequent species (about
    44 % accurate, where a trained version is above 95 %). Same features, classes and card as a
    good version, so it loads and answers like one."""
    good = artifacts.load(local_dir(good_uri))
    frame = pd.read_csv(data).dropna(subset=["species"])
    model = pipeline.Pipeline(
        [
            ("prep", compose.ColumnTransformer([("num", impute.SimpleImputer(), NUMERIC)])),
            ("clf", dummy.DummyClassifier(strategy="most_frequent")),
        ]
    ).fit(frame[FEATURES], frame["species"])
    card = {**good.card, "algorithm": "most_frequent", "createdAt": datetime.datetime.now(datetime.UTC).isoformat()}
    reference = pd.read_parquet(local_dir(good_uri) / artifacts.REFERENCE)
    return artifacts.write(dest.as_uri() + "/", pipeline=model, card=card, metrics={"test": {}}, reference=reference)


def register(cluster: localcluster.LocalCluster, namespace: str, project: str, *, name: str, info: artifacts.ArtifactInfo) -> int:
    """Add a hand-made version to the project's registry, as the MLProject controller records a
    TrainingJob's (a status write guarded by resourceVersion, retried on conflict)."""
    for _attempt in range(10):
        mlp = cluster.get("mlproject", project, namespace)
        models = mlp["status"].get("models", [])
        version = max((m["version"] for m in models), default=0) + 1
        entry = {
            "version": version,
            "trainingJob": name,
            "createdAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "algorithm": "logistic_regression",
            "metrics": {},
            "eligible": False,
            "artifactUri": info.uri,
            "digest": info.digest,
            "trigger": "manual",
        }
        patch = {
            "metadata": {"resourceVersion": mlp["metadata"]["resourceVersion"]},
            "status": {"models": [*models, entry], "versions": len(models) + 1},
        }
        result = cluster.kubectl(
            "patch",
            "mlproject",
            project,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(patch),
            check=False,
        )
        if result.returncode == 0:
            return version
        time.sleep(0.5)
    raise AssertionError(f"could not register {name}: {result.stderr}")


def tamper(uri: str) -> pathlib.Path:
    """Modify a trained version's model file after training (one byte appended)."""
    model = local_dir(uri) / artifacts.MODEL
    with open(model, "ab") as f:
        f.write(b"\0")
    return model
