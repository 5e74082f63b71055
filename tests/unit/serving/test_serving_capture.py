"""Capture: object layout, batching by count and time, bounded memory, retry after a failed write."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re

from mlkube.api import inference_log
from mlkube.serving import capture, stats

DAY1 = 1_795_000_000.0  # 2026-11-18T..Z
DAY2 = DAY1 + 86_400


def record(i: int, ts: float = DAY1) -> dict:
    """A record as the router offers it: wire names, the time as `_ts`, raw bodies."""
    return {
        "_ts": ts,
        "requestId": f"r{i}",
        "namespace": "ml",
        "deployment": "churn",
        "project": "churn",
        "version": 2,
        "role": "stable",
        "protocol": "v1",
        "verb": "predict",
        "status": 200,
        "latencyMs": 1.5,
        "request": b'{"instances": [[1]]}',
        "response": b"not json",
    }


def label(request_id: str, ts: float) -> inference_log.FeedbackRecord:
    return inference_log.FeedbackRecord(request_id=request_id, ground_truth=1, timestamp=inference_log.record_time(ts))


def files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*.jsonl"))


def test_write_records_splits_by_utc_date_under_the_documented_layout(tmp_path):
    uris = capture.write_records(
        tmp_path.as_uri(),
        inference_log.FEEDBACK,
        [label("a", DAY1), label("b", DAY2)],
        namespace="ml",
        deployment="churn",
        host="h1",
    )
    assert len(uris) == 2
    paths = [p.relative_to(tmp_path).as_posix() for p in files(tmp_path)]
    assert re.fullmatch(r"feedback/ml/churn/date=2026-11-18/\d+-h1-\d{6}\.jsonl", paths[0])
    assert paths[1].startswith("feedback/ml/churn/date=2026-11-19/")
    assert json.loads(files(tmp_path)[1].read_text()) == label("b", DAY2).wire()


def test_a_record_is_filed_under_the_utc_date_of_its_own_time(tmp_path):
    just_before_midnight = DAY2 - DAY2 % 86_400 - 0.5
    capture.write_lines(
        tmp_path.as_uri(),
        inference_log.INFERENCE_LOG,
        [capture.line_of(record(1, just_before_midnight))],
        namespace="ml",
        deployment="churn",
        host="h1",
    )
    [path] = files(tmp_path)
    assert "/date=2026-11-18/" in path.as_posix()
    assert json.loads(path.read_text())["timestamp"] == "2026-11-18T23:59:59.500Z"


def test_recorder_flushes_a_full_batch_at_once_and_decodes_bodies(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60, batch_records=3)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.start()
        for i in range(3):
            recorder.offer(record(i))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if files(tmp_path):
                break
        written = files(tmp_path)
        await recorder.close()
        return recorder, written

    recorder, written = asyncio.run(scenario())
    assert len(written) == 1 and "inference-log/ml/churn/date=2026-11-18/" in written[0].as_posix()
    lines = [json.loads(line) for line in written[0].read_text().splitlines()]
    assert [line["requestId"] for line in lines] == ["r0", "r1", "r2"]
    assert lines[0]["request"] == {"instances": [[1]]} and lines[0]["response"] == "not json"
    assert lines[0]["timestamp"].endswith("Z") and "_ts" not in lines[0]
    assert lines[0] == capture.line_of(record(0)), "each line is the offered record completed in the worker thread"
    assert recorder.stats.capture["written"] == 3


def test_recorder_flushes_a_partial_batch_on_its_timer(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=0.05, batch_records=1000)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.start()
        recorder.offer(record(1))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if files(tmp_path):
                break
        found = files(tmp_path)
        await recorder.close()
        return found

    assert len(asyncio.run(scenario())) == 1


def test_recorder_drops_and_counts_beyond_its_bound():
    recorder = capture.Recorder(stats.Stats(), max_buffered=2)
    assert [recorder.offer(record(i)) for i in range(4)] == [True, True, False, False]
    assert recorder.stats.capture == {"captured": 2, "written": 0, "dropped": 2, "writeErrors": 0}


def test_failed_write_is_retried_and_then_lands(tmp_path):
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store directory should be")

    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60)
        recorder.set_target(blocker.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.offer(record(1))
        await recorder.flush()
        failed = dict(recorder.stats.capture)
        blocker.unlink()
        await recorder.flush()
        return recorder, failed

    recorder, failed = asyncio.run(scenario())
    assert failed["writeErrors"] == 1 and failed["written"] == 0
    assert recorder.stats.capture["written"] == 1 and len(files(blocker)) == 1


def test_records_queued_before_capture_is_switched_off_are_counted_as_dropped(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.offer(record(1))
        recorder.set_target(None, namespace="ml", deployment="churn", endpoint=None)
        recorder.start()
        await recorder.close()
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.stats.capture["dropped"] == 1 and not files(tmp_path)
