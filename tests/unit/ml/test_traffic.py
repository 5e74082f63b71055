"""Captured traffic as a table: the router's inference log (V1 and V2 bodies) joined with feedback."""

from __future__ import annotations

import datetime
import json
import pathlib

from mlkube.ml import traffic

SINCE = datetime.datetime(2026, 11, 20, tzinfo=datetime.UTC)


def write(root: pathlib.Path, kind: str, name: str, records: list[dict]) -> None:
    path = root / kind / "ml/prod/date=2026-11-24" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def logged(request_id: str, second: int, request: dict, response: dict, **extra) -> dict:
    return {
        "requestId": request_id,
        "timestamp": f"2026-11-24T10:00:{second:02d}.000Z",
        "version": 1,
        "role": "stable",
        "verb": "predict",
        "status": 200,
        "request": request,
        "response": response,
        **extra,
    }


def test_v1_and_v2_bodies_become_one_row_per_instance_with_probabilities_and_feedback(tmp_path):
    v2_request = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[1.0, 2.0], [3.0, 4.0]]}]}
    v2_response = {
        "outputs": [
            {"name": "predict", "data": ["a", "b"]},
            {
                "name": "probabilities",
                "shape": [2, 2],
                "data": [[0.9, 0.1], [0.2, 0.8]],
                "parameters": {"classes": json.dumps(["a", "b"])},
            },
        ]
    }
    write(
        tmp_path,
        "inference-log",
        "1-router-000001.jsonl",
        [
            logged(
                "r1", 1, {"instances": [{"x": 5.0, "y": 6.0}]}, {"predictions": ["a"], "probabilities": [{"a": 0.7, "b": 0.3}]}
            ),
            logged("r2", 2, v2_request, v2_response),
            logged("r3", 3, {"instances": [[7.0, 8.0]]}, {"predictions": ["b"]}, role="shadow"),  # a mirror copy
            logged("r4", 4, {"instances": [[7.0, 8.0]]}, {"error": "bad"}, status=400),  # refused
        ],
    )
    write(
        tmp_path,
        "feedback",
        "2-router-000001.jsonl",
        [
            {"requestId": "r1", "groundTruth": "b", "timestamp": "2026-11-24T11:00:00.000Z"},
            {"requestId": "r1", "groundTruth": "a", "timestamp": "2026-11-24T12:00:00.000Z"},  # the latest answer wins
        ],
    )
    table = traffic.window(f"file://{tmp_path}", namespace="ml", deployment="prod", features=["x", "y"], since=SINCE, size=10)
    assert table[["x", "y"]].values.tolist() == [[5.0, 6.0], [1.0, 2.0], [3.0, 4.0]]
    assert table["__prediction__"].tolist() == ["a", "a", "b"]
    assert table["__probabilities__"].tolist() == [{"a": 0.7, "b": 0.3}, {"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}]
    assert table["__request_id__"].tolist() == ["r1", "r2", "r2"] and table["__role__"].tolist() == ["stable"] * 3
    assert table["__target__"].tolist()[0] == "a" and table["__target__"].isna().tolist() == [False, True, True]


def test_the_window_keeps_the_most_recent_instances_and_labeled_orders_them_oldest_first(tmp_path):
    write(
        tmp_path,
        "inference-log",
        "1-router-000001.jsonl",
        [logged(f"r{i}", i, {"instances": [{"x": float(i)}]}, {"predictions": [i % 2]}) for i in range(10)],
    )
    write(
        tmp_path,
        "feedback",
        "2-router-000001.jsonl",
        [{"requestId": f"r{i}", "groundTruth": i % 2, "timestamp": "2026-11-24T11:00:00.000Z"} for i in (9, 2, 5)],
    )
    root = f"file://{tmp_path}"
    recent = traffic.window(root, namespace="ml", deployment="prod", features=["x"], since=SINCE, size=4)
    assert recent["x"].tolist() == [6.0, 7.0, 8.0, 9.0]
    rows = traffic.labeled(root, namespace="ml", deployments=["prod"], features=["x"], target="y", since=SINCE)
    assert rows.to_dict("records") == [{"x": 2.0, "y": 0}, {"x": 5.0, "y": 1}, {"x": 9.0, "y": 1}]
    later = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC)
    assert traffic.window(root, namespace="ml", deployment="prod", features=["x"], since=later, size=4).empty


def test_the_window_start_selects_utc_date_partitions_whatever_its_time_zone(tmp_path):
    path = tmp_path / "inference-log/ml/prod/date=2026-11-23/1-router-000001.jsonl"
    path.parent.mkdir(parents=True)
    late = {**logged("r1", 0, {"instances": [{"x": 1.0}]}, {"predictions": [0]}), "timestamp": "2026-11-23T21:00:00.000Z"}
    path.write_text(json.dumps(late) + "\n")
    since = datetime.datetime(2026, 11, 24, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))  # 20:00Z on the 23rd
    table = traffic.window(f"file://{tmp_path}", namespace="ml", deployment="prod", features=["x"], since=since, size=10)
    assert table["__request_id__"].tolist() == ["r1"]
