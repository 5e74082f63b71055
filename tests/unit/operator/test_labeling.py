"""Bulk labeling: export the captured requests waiting for ground truth, import labels into the feedback layout.

The inference log is written here as the router documents it (docs/serving.md, "Capture layout"), and
what an import writes is read back through the same reader the DriftMonitor and the trainer use.
"""

from __future__ import annotations

import datetime
import json
import pathlib

import pandas as pd
import pytest

from mlkube import cli
from mlkube import feedback as labeling
from mlkube.ml import traffic

SINCE = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
NOW = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=datetime.UTC).timestamp()


def write_log(root: pathlib.Path, records: list[dict]) -> None:
    path = root / "inference-log/ml/prod/date=2026-11-20/1795000000-router-000001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def record(
    request_id: str, instance: dict, prediction: str, *, role: str = "stable", status: int = 200, version: int = 1
) -> dict:
    return {
        "requestId": request_id,
        "timestamp": f"2026-11-20T10:00:0{request_id[-1]}.000Z",
        "namespace": "ml",
        "deployment": "prod",
        "version": version,
        "role": role,
        "protocol": "v1",
        "verb": "predict",
        "status": status,
        "request": {"instances": [instance]},
        "response": {"predictions": [prediction]},
    }


@pytest.fixture
def store(tmp_path: pathlib.Path) -> labeling.Traffic:
    write_log(
        tmp_path,
        [
            record("r1", {"bill": 39.1, "island": "Dream"}, "Adelie"),
            record("r2", {"bill": 46.5, "island": "Biscoe"}, "Gentoo", role="canary", version=2),
            record("r3", {"bill": 50.0, "island": "Dream"}, "Chinstrap"),
            record("r4", {"bill": 41.0, "island": "Dream"}, "Adelie", role="shadow"),  # a mirror copy: not a client request
            record("r5", {"bill": 41.0, "island": "Dream"}, "Adelie", status=400),  # refused: nothing to label
        ],
    )
    return labeling.Traffic(storage=f"file://{tmp_path}", namespace="ml", deployment="prod")


def test_export_lists_client_requests_without_ground_truth_and_import_labels_them(store, tmp_path):
    out = tmp_path / "pending.csv"
    assert labeling.export(store, out, since=SINCE) == 3
    table = pd.read_csv(out, dtype={"groundTruth": object})
    assert list(table.columns) == ["requestId", "timestamp", "version", "prediction", "groundTruth", "bill", "island"]
    assert table["requestId"].tolist() == ["r1", "r2", "r3"] and table["groundTruth"].isna().all()

    table.loc[table["requestId"] == "r1", "groundTruth"] = "Adelie"
    table.loc[table["requestId"] == "r2", "groundTruth"] = "Chinstrap"
    table.to_csv(out, index=False)
    report = labeling.import_labels(store, out, since=SINCE, now=NOW)
    assert (report.written, report.unlabeled, report.unknown) == (2, 1, [])
    assert "/feedback/ml/prod/date=2026-11-20/" in report.uri

    labels = traffic.feedback(store.storage, namespace="ml", deployment="prod", since=SINCE)
    assert labels == {"r1": "Adelie", "r2": "Chinstrap"}
    written = [json.loads(line) for line in labeling.storage.read_bytes(report.uri).splitlines()]
    assert {r["requestId"]: (r["version"], r["role"]) for r in written} == {"r1": (1, "stable"), "r2": (2, "canary")}
    assert labeling.export(store, out, since=SINCE) == 1, "labeled requests are no longer pending"


def test_unknown_ids_are_reported_and_not_written(store, tmp_path):
    labels = tmp_path / "labels.parquet"
    pd.DataFrame({"requestId": ["r3", "nope", "r4"], "groundTruth": [1, 0, 1]}).to_parquet(labels)
    report = labeling.import_labels(store, labels, since=SINCE, now=NOW)
    assert report.written == 1 and report.unknown == ["nope", "r4"]
    assert traffic.feedback(store.storage, namespace="ml", deployment="prod", since=SINCE) == {"r3": 1}


def test_csv_ground_truth_keeps_its_json_type(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("requestId,groundTruth\na,1\nb,2.5\nc,yes\nd,\n")
    assert labeling.read_labels(path) == ({"a": 1, "b": 2.5, "c": "yes"}, 1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,label\na,1\n", "missing column(s) requestId, groundTruth"),
        ("requestId,groundTruth\na,1\na,2\n", "row 3: request a has two ground truths"),
        ("requestId,groundTruth\n,1\n", "row 2: requestId is empty"),
    ],
)
def test_bad_label_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(labeling.LabelingError, match="labels.csv: " + message.replace("(", r"\(").replace(")", r"\)")):
        labeling.read_labels(path)


def test_unsupported_file_type_is_refused(store, tmp_path):
    with pytest.raises(labeling.LabelingError, match=r"labels.xlsx: unsupported file type '.xlsx'; use .csv or .parquet"):
        labeling.import_labels(store, tmp_path / "labels.xlsx", since=SINCE)


def test_cli_round_trip_and_exit_codes(store, tmp_path, capsys):
    out = tmp_path / "pending.parquet"
    common = ["-d", "prod", "-n", "ml", "--storage", store.storage, "--since", "3650d"]
    assert cli.main(["feedback", "export", "-o", str(out), *common]) == 0
    table = pd.read_parquet(out)
    table["groundTruth"] = ["Adelie", "Gentoo", "Chinstrap"]
    table.loc[len(table)] = {**table.iloc[0].to_dict(), "requestId": "ghost"}
    table.to_parquet(out)
    assert cli.main(["feedback", "import", str(out), *common]) == 1
    captured = capsys.readouterr()
    assert "imported 3 ground truth label(s)" in captured.out
    assert "1 unknown request id(s), not written" in captured.err and "ghost" in captured.err
    assert cli.main(["feedback", "import", str(out), *common[:-1], "3x"]) == 2
    assert "--since" in capsys.readouterr().err
