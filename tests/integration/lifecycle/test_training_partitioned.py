"""Issue 19 acceptance on the embedded control plane: a project whose data is a prefix of Parquet
files trains on all of them, and an input too large for the trainer's memory limit is refused
with its size, before it is read. Real trainer pods, kubectl."""

from __future__ import annotations

import pandas as pd
from lifecycle_helpers import project, trainingjob, wait_for


def finished(cluster, name, namespace, timeout=240):
    def done():
        status = (cluster.get("trainingjob", name, namespace) or {}).get("status") or {}
        return status if status.get("phase") == "Failed" or status.get("modelVersion") is not None else None

    return wait_for(done, timeout, f"TrainingJob {name} to finish", interval=0.5)


def prefix_project(parts, models):
    doc = project("penguins", parts, models)
    doc["spec"]["data"]["uri"] = f"file://{parts}/"
    return doc


def test_a_prefix_of_parquet_files_trains_on_every_part(cluster, namespace, penguins_csv, tmp_path):
    table = pd.read_csv(penguins_csv)
    parts = tmp_path / "penguins"
    for island, rows in table.groupby("island"):
        (parts / f"island={island}").mkdir(parents=True)
        rows.to_parquet(parts / f"island={island}" / "part-0.parquet")
    (parts / "_SUCCESS").write_text("")
    cluster.apply(prefix_project(parts, tmp_path / "models"), namespace)
    cluster.apply(trainingjob("parts", "penguins"), namespace)

    status = finished(cluster, "parts", namespace)
    assert status.get("modelVersion") == 1, status["conditions"]
    [lineage] = status["lineage"]["data"]
    assert lineage["uri"] == f"file://{parts}/" and lineage["rows"] == len(table) == 344


def test_data_larger_than_the_memory_limit_allows_is_refused_with_its_size(cluster, namespace, penguins_csv, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    # 40 million rows of two int64 columns: about 640 MB in memory, a few hundred KB on disk.
    pd.DataFrame({"species": pd.Series(0, index=range(40_000_000)), "bill": 0}).to_parquet(big / "part-0.parquet")
    cluster.apply(prefix_project(big, tmp_path / "models"), namespace)
    cluster.apply(trainingjob("too-big", "penguins", resources={"limits": {"memory": "1Gi"}}), namespace)

    status = finished(cluster, "too-big", namespace)
    assert status["phase"] == "Failed" and status.get("modelVersion") is None
    message = next(c["message"] for c in status["conditions"] if c["type"] == "Ready")
    assert f"data.uri: file://{big}/ (" in message, message
    assert "in memory) does not fit the trainer's memory" in message and "1.0 GiB limit" in message, message
