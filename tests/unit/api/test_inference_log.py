"""The inference-log contract: what the writers write, the readers read back; the layout both sides share."""

from __future__ import annotations

import datetime
import json
import pathlib

import pydantic
import pytest

from mlkube.api import inference_log
from mlkube.ml import errors, traffic
from mlkube.serving import capture, feedback

RECEIVED = 1_795_000_000.25  # 2026-11-18T11:06:40.250Z
SINCE = datetime.datetime(2026, 11, 18, tzinfo=datetime.UTC)


def offered(request_id: str, **changes) -> dict:
    """A record as the router offers it to the Recorder (router.py builds the same dict)."""
    return {
        "_ts": RECEIVED,
        "requestId": request_id,
        "namespace": "ml",
        "deployment": "churn",
        "project": "churn",
        "version": 3,
        "role": "stable",
        "protocol": "v1",
        "verb": "predict",
        "status": 200,
        "latencyMs": 2.41,
        "request": b'{"instances": [{"x": 1.5, "y": "a"}]}',
        "response": b'{"predictions": [1]}',
        **changes,
    }


def lines_under(root: pathlib.Path, kind: str) -> list[dict]:
    return [json.loads(line) for path in sorted(root.glob(f"{kind}/**/*.jsonl")) for line in path.read_text().splitlines()]


def test_captured_requests_written_by_the_router_side_are_read_back_by_drift_analysis(tmp_path):
    records = [offered("r1"), offered("r2", role="shadow"), offered("r3", status=502, response=b"unreachable")]
    capture.write_lines(
        tmp_path.as_uri(), inference_log.INFERENCE_LOG, [capture.line_of(r) for r in records], namespace="ml", deployment="churn"
    )

    for line in lines_under(tmp_path, inference_log.INFERENCE_LOG):
        assert inference_log.CaptureRecord.model_validate(line).wire() == line, "the unvalidated writer agrees with the model"
    table = traffic.window(tmp_path.as_uri(), namespace="ml", deployment="churn", features=["x", "y"], since=SINCE, size=10)
    assert table[["x", "y", "__prediction__", "__request_id__", "__version__", "__role__", "__time__"]].to_dict("records") == [
        {
            "x": 1.5,
            "y": "a",
            "__prediction__": 1,
            "__request_id__": "r1",
            "__version__": 3,
            "__role__": "stable",
            "__time__": "2026-11-18T11:06:40.250Z",
        },
    ]


def test_feedback_written_by_the_router_side_is_read_back_as_labels(tmp_path):
    index = feedback.RequestIndex()
    index.remember("r1", feedback.Served(3, "canary", RECEIVED))
    first, _ = feedback.judge([{"requestId": "r1", "groundTruth": 0}], index, now=RECEIVED + 60)
    latest, _ = feedback.judge([{"requestId": "r1", "groundTruth": 1}], index, now=RECEIVED + 120)
    capture.write_records(tmp_path.as_uri(), inference_log.FEEDBACK, latest + first, namespace="ml", deployment="churn")

    read = list(traffic.records(inference_log.FeedbackRecord, sorted(p.as_uri() for p in tmp_path.glob("feedback/**/*.jsonl"))))
    assert read == latest + first
    assert traffic.feedback(tmp_path.as_uri(), namespace="ml", deployment="churn", since=SINCE) == {"r1": 1}


def test_the_capture_builder_writes_the_model_fields_under_their_wire_names_in_order():
    line = capture.line_of(offered("r1"))
    flags = ("truncated", "bodiesAsText")  # written only when true
    assert list(line) == [f.alias for f in inference_log.CaptureRecord.model_fields.values() if f.alias not in flags]
    assert line["timestamp"] == "2026-11-18T11:06:40.250Z" and line["request"] == {"instances": [{"x": 1.5, "y": "a"}]}


def test_logs_as_documented_and_with_fields_from_a_newer_writer_still_read():
    documented = {
        "requestId": "9f2c",
        "timestamp": "2026-11-24T06:52:00.910Z",
        "namespace": "ml",
        "deployment": "churn-prod",
        "project": "churn",
        "version": 4,
        "role": "canary",
        "protocol": "v1",
        "verb": "predict",
        "status": 200,
        "latencyMs": 2.41,
        "request": {"instances": [[1]]},
        "response": {"predictions": [0]},
    }
    record = inference_log.CaptureRecord.model_validate_json(json.dumps({**documented, "addedLater": True}))
    assert record.wire() == documented
    minimal = inference_log.FeedbackRecord.model_validate(
        {"requestId": "9f2c", "groundTruth": None, "timestamp": "2026-11-24T07:00:00.000Z"}
    )
    assert minimal.ground_truth is None and minimal.version is None


@pytest.mark.parametrize(
    "line, field",
    [
        ({"timestamp": "2026-11-24T06:52:00.910Z", "version": 1, "role": "stable", "status": 200}, "requestId"),
        ({"requestId": "a", "timestamp": "2026-11-24 06:52", "version": 1, "role": "stable", "status": 200}, "timestamp"),
        ({"requestId": "a", "timestamp": "2026-11-24T06:52:00Z", "version": "four", "role": "stable", "status": 200}, "version"),
    ],
)
def test_a_malformed_capture_record_is_refused_naming_the_field(line, field):
    with pytest.raises(pydantic.ValidationError, match=field):
        inference_log.CaptureRecord.model_validate(line)


def test_the_reader_names_the_object_and_line_of_a_record_it_cannot_use(tmp_path):
    path = tmp_path / "inference-log/ml/churn/date=2026-11-18/1-h-000001.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(capture.line_of(offered("r1"))) + "\n\n" + '{"requestId": "r2"}\n')
    with pytest.raises(
        errors.DataError, match=r"1-h-000001.jsonl, line 3: not a CaptureRecord: record.timestamp: Field required"
    ):
        traffic.window(tmp_path.as_uri(), namespace="ml", deployment="churn", features=["x"], since=SINCE, size=10)


def test_layout_paths():
    prefix = inference_log.prefix(inference_log.FEEDBACK, namespace="ml", deployment="churn-prod")
    name = inference_log.object_name(
        date="2026-11-24", written=1_795_000_000.9, host="router-7d9f", writer="3f9a1c2e", sequence=42
    )
    assert prefix + name == "feedback/ml/churn-prod/date=2026-11-24/1795000000-router-7d9f-3f9a1c2e-000042.jsonl"
    assert inference_log.prefix(inference_log.INFERENCE_LOG, namespace="ml", deployment="d") == "inference-log/ml/d/"


@pytest.mark.parametrize(
    "name, selected",
    [
        ("date=2026-11-24/1-h-000001.jsonl", True),
        ("date=2026-11-25/1-h-000001.jsonl", True),
        ("date=2026-11-23/1-h-000001.jsonl", False),  # before the window
        ("date=2026-11-24/notes.txt", False),  # not a batch
        ("stray.jsonl", False),  # not in a date partition
    ],
)
def test_readers_select_the_batches_of_partitions_from_the_window_start(name, selected):
    assert inference_log.is_since(name, since=datetime.date(2026, 11, 24)) is selected


@pytest.mark.parametrize(
    "seconds, text",
    [
        (1_795_000_000.25, "2026-11-18T11:06:40.250Z"),
        (1_795_000_000, "2026-11-18T11:06:40.000Z"),
        (1_795_046_399.9996, "2026-11-18T23:59:59.999Z"),  # milliseconds are truncated: the date never moves forward
    ],
)
def test_record_times_are_utc_milliseconds_and_give_the_partition_date(seconds, text):
    assert inference_log.record_time(seconds) == text
    assert inference_log.date_of({"timestamp": text}) == "2026-11-18"
