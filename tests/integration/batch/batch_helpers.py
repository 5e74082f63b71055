"""Helpers of the BatchPrediction tests: replicated real penguin rows, manifests, waiting, outputs,
and the online answers of a served version. The cluster is the shared one of localcluster.py."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import httpx
import numpy as np
import palmerpenguins
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from localcluster import LocalCluster, wait_for

PROJECT = "penguins"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


def replicated(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """``rows`` real penguins (drawn with replacement from the 344 of the palmerpenguins package),
    their features only, after a ``penguin_id`` column numbering them 0..rows-1."""
    real = palmerpenguins.load_penguins()[FEATURES]
    frame = real.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    frame.insert(0, "penguin_id", np.arange(rows))
    return frame


def write_csv(frame: pd.DataFrame, directory: pathlib.Path, files: int) -> list[pathlib.Path]:
    """``frame`` split in order into ``files`` CSV files named part-0.csv, part-1.csv, ..."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, chunk in enumerate(np.array_split(np.arange(len(frame)), files)):
        path = directory / f"part-{index}.csv"
        frame.iloc[chunk].to_csv(path, index=False)
        paths.append(path)
    return paths


def write_parquet(frame: pd.DataFrame, path: pathlib.Path, *, row_group: int) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group)
    return path


def bp(name: str, *, input_: dict[str, Any], output: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "BatchPrediction",
        "metadata": {"name": name},
        "spec": {"projectRef": PROJECT, "model": {"version": 1}, "input": input_, "output": output, **spec},
    }


def finished(cluster: LocalCluster, name: str, namespace: str, timeout: float = 240) -> dict[str, Any]:
    """The BatchPrediction's status once it Succeeded or Failed."""

    def done() -> dict[str, Any] | None:
        status = cluster.status("batchprediction", name, namespace)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, f"BatchPrediction {name} to finish", interval=0.5)


def output(directory: pathlib.Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """A run's manifest and its parts (in manifest order) as one frame."""
    manifest = json.loads((directory / "_manifest.json").read_text())
    reader = pd.read_parquet if manifest["format"] == "parquet" else pd.read_csv
    return manifest, pd.concat([reader(directory / part["name"]) for part in manifest["parts"]], ignore_index=True)


def serve(cluster: LocalCluster, namespace: str, name: str, version: int) -> str:
    """Serve ``version`` with a ModelDeployment; its router's predict URL once it is Ready."""
    cluster.apply(
        {
            "apiVersion": "mlkube.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"projectRef": PROJECT, "model": {"version": version}, "strategy": {"type": "Direct"}},
        },
        namespace,
    )

    def ready() -> str | None:
        status = cluster.status("modeldeployment", name, namespace)
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return status.get("url") if conditions.get("Ready") == "True" else None

    return f"{wait_for(ready, 180, f'ModelDeployment {name} to serve', interval=1)}/v1/models/{name}:predict"


def online(url: str, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The router's answer for each row, one request per row as a client sends them:
    {"prediction": label, "probabilities": {class: p}}."""
    answers = []
    with httpx.Client(timeout=30) as http:
        for row in rows[FEATURES].to_dict("records"):
            instance = {k: (None if pd.isna(v) else v) for k, v in row.items()}
            body = http.post(url, json={"instances": [instance]})
            body.raise_for_status()
            answer = body.json()
            answers.append({"prediction": answer["predictions"][0], "probabilities": answer["probabilities"][0]})
    return answers
