"""Capture: object layout, batching by count and time, bounded memory (records and bytes), retry after a
failed write, and records that cannot be serialised, bodies that are too long and a dying task."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re

import pytest

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
    assert re.fullmatch(r"feedback/ml/churn/date=2026-11-18/\d+-h1-[0-9a-f]{8}-\d{6}\.jsonl", paths[0])
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
    assert recorder.stats.capture == {
        "captured": 2,
        "written": 0,
        "dropped": 2,
        "writeErrors": 0,
        "truncated": 0,
        "unserializable": 0,
        "errors": 0,
        "restarts": 0,
    }


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


def lines_in(root: pathlib.Path) -> list[dict]:
    return [json.loads(line) for path in files(root) for line in path.read_text().splitlines()]


def nested(depth: int) -> bytes:
    return b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


def test_a_body_nested_too_deep_for_orjson_is_written_as_text_and_the_batch_with_it(tmp_path):
    # The attack of issue 14: orjson parses 300 levels but writes at most 254; the recorder used to
    # die on the first such body (captured 29, written 3) and never write again.
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        for i in range(29):
            recorder.offer({**record(i), "request": nested(300) if i == 3 else b'{"instances": [[1]]}'})
        await recorder.flush()
        recorder.offer(record(99))
        await recorder.flush()
        return recorder

    recorder = asyncio.run(scenario())
    lines = lines_in(tmp_path)
    assert sorted(line["requestId"] for line in lines) == sorted([f"r{i}" for i in range(29)] + ["r99"])
    [deep] = [line for line in lines if line["requestId"] == "r3"]
    assert deep["bodiesAsText"] is True and deep["request"] == nested(300).decode() and deep["response"] == "not json"
    assert all("bodiesAsText" not in line for line in lines if line["requestId"] != "r3")
    assert recorder.stats.capture["written"] == 30 and recorder.stats.capture["unserializable"] == 1
    assert recorder.stats.capture["dropped"] == 0 and recorder.held == 0 and recorder.held_bytes == 0


def test_a_record_that_cannot_be_written_at_all_is_dropped_counted_and_the_rest_written(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.offer(record(1))
        recorder.offer({**record(2), "_ts": "not a time"})
        recorder.offer(record(3))
        await recorder.flush()
        return recorder

    recorder = asyncio.run(scenario())
    assert [line["requestId"] for line in lines_in(tmp_path)] == ["r1", "r3"]
    assert {k: recorder.stats.capture[k] for k in ("written", "errors", "dropped")} == {"written": 2, "errors": 1, "dropped": 1}


def test_a_long_body_is_held_and_written_truncated_with_a_flag(tmp_path):
    big = b'{"instances": [' + b"[1.5, 2.5]," * 400_000 + b"[0]]}"  # 4.4 MB

    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60, max_body_bytes=1000)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        recorder.offer({**record(1), "request": big})
        recorder.offer(record(2))
        held = recorder.held_bytes
        await recorder.flush()
        return recorder, held

    recorder, held = asyncio.run(scenario())
    assert held < 4000, "the buffer holds the first max_body_bytes of a body, not the body"
    first, second = lines_in(tmp_path)
    assert first["truncated"] is True and first["request"] == big[:1000].decode() and first["response"] == "not json"
    assert "truncated" not in second and second["request"] == {"instances": [[1]]}
    assert recorder.stats.capture["truncated"] == 1 and recorder.stats.capture["written"] == 2


def test_the_buffer_is_bounded_by_bytes_and_frees_them_once_written(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=60, max_body_bytes=10_000, max_buffered_bytes=25_000)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        offered = [recorder.offer({**record(i), "request": b"x" * 9_000}) for i in range(4)]
        await recorder.flush()
        after = recorder.offer({**record(9), "request": b"x" * 9_000})
        return recorder, offered, after

    recorder, offered, after = asyncio.run(scenario())
    assert offered == [True, True, False, False] and after is True
    assert recorder.stats.capture["dropped"] == 2 and recorder.stats.capture["written"] == 2


def test_a_recorder_task_that_dies_is_restarted_counted_and_keeps_writing(tmp_path):
    async def scenario():
        recorder = capture.Recorder(stats.Stats(), flush_seconds=0.02)
        recorder.set_target(tmp_path.as_uri(), namespace="ml", deployment="churn", endpoint=None)
        real_flush, failures = recorder.flush, [RuntimeError("injected fault")]

        async def failing_once():
            if failures:
                raise failures.pop()
            await real_flush()

        recorder.flush = failing_once
        recorder.start()
        recorder.offer(record(1))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if recorder.stats.capture["written"]:
                break
        recorder.flush = real_flush
        await recorder.close()
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.stats.capture["restarts"] == 1 and recorder.stats.capture["errors"] == 1
    assert [line["requestId"] for line in lines_in(tmp_path)] == ["r1"]


def test_capture_counters_reach_prometheus():
    s = stats.Stats("churn")
    s.capture["unserializable"] = 2
    s.capture["restarts"] = 1
    body = stats.prometheus_text(s)[0].decode()
    assert 'mlkube_router_capture_unserializable_total{deployment="churn"} 2.0' in body
    assert 'mlkube_router_capture_restarts_total{deployment="churn"} 1.0' in body
    assert 'mlkube_router_capture_errors_total{deployment="churn"} 0.0' in body


def test_recorder_options_out_of_range_are_refused_naming_them():
    with pytest.raises(ValueError, match="max_buffered_bytes"):
        capture.Recorder(stats.Stats(), max_buffered_bytes=0)
