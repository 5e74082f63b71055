"""The adaptive batcher: concurrent requests scored in one call, each with its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from mlkube.serving import batcher

HOUR = 3600.0  # a wait that would hang the test: a request that is scored did not wait for it


class Scorer:
    """A score function recording its batches; items named "bad" fail, alone."""

    def __init__(self, *, fail_whole_batch: bool = False):
        self.batches: list[list] = []
        self.fail_whole_batch = fail_whole_batch

    def __call__(self, items: list) -> list:
        self.batches.append(list(items))
        if self.fail_whole_batch:
            raise RuntimeError("the model is gone")
        return [ValueError(f"cannot score {item!r}") if item == "bad" else f"scored {item}" for item in items]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))


def test_requests_that_arrive_together_are_scored_in_one_call_each_with_its_own_result():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)

    async def go():
        return await asyncio.gather(*(gather.submit(name) for name in ("a", "b", "c")))

    assert run(go()) == ["scored a", "scored b", "scored c"]
    assert score.batches == [["a", "b", "c"]]


def test_a_lone_request_on_an_idle_batcher_is_not_kept_waiting():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)
    assert run(gather.submit("a")) == "scored a"
    assert score.batches == [["a"]]


def test_an_error_for_one_request_fails_only_that_request():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)

    async def go():
        return await asyncio.gather(*(gather.submit(name) for name in ("a", "bad", "c")), return_exceptions=True)

    first, bad, third = run(go())
    assert (first, third) == ("scored a", "scored c")
    assert isinstance(bad, ValueError) and str(bad) == "cannot score 'bad'"
    assert score.batches == [["a", "bad", "c"]]


def test_a_scorer_that_fails_as_a_whole_fails_its_batch_and_the_batcher_goes_on():
    score = Scorer(fail_whole_batch=True)
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)

    async def go():
        failed = await asyncio.gather(gather.submit("a"), gather.submit("b"), return_exceptions=True)
        score.fail_whole_batch = False
        return failed, await asyncio.gather(gather.submit("c"), gather.submit("d"))

    failed, scored = run(go())
    assert [str(e) for e in failed] == ["the model is gone", "the model is gone"]
    assert scored == ["scored c", "scored d"]


def test_batches_hold_at_most_max_rows_and_a_larger_request_is_scored_alone():
    score = Scorer()
    sizes = {"small": 2, "big": 10}
    gather = batcher.Batcher(score, max_rows=5, max_latency=HOUR, rows_of=lambda item: sizes[item.split("-")[0]])

    async def go():
        items = ["small-1", "small-2", "big-1", "small-3", "small-4", "small-5"]
        return await asyncio.gather(*(gather.submit(item) for item in items))

    assert run(go()) == ["scored small-1", "scored small-2", "scored big-1", "scored small-3", "scored small-4", "scored small-5"]
    assert score.batches == [["small-1", "small-2"], ["big-1"], ["small-3", "small-4"], ["small-5"]]


def test_after_a_busy_batch_the_batcher_waits_for_as_many_requests_before_scoring():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)

    async def go():
        await asyncio.gather(*(gather.submit(f"first-{i}") for i in range(3)))
        # The next three arrive one turn of the event loop apart, as from three clients.
        pending = []
        for i in range(3):
            pending.append(asyncio.ensure_future(gather.submit(f"next-{i}")))
            await asyncio.sleep(0)
        return await asyncio.gather(*pending)

    assert run(go()) == ["scored next-0", "scored next-1", "scored next-2"]
    assert score.batches == [["first-0", "first-1", "first-2"], ["next-0", "next-1", "next-2"]]


def test_fewer_requests_than_expected_are_scored_when_the_latency_bound_is_reached():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=0.01)

    async def go():
        await asyncio.gather(*(gather.submit(f"first-{i}") for i in range(4)))
        return await gather.submit("alone")  # expects four, one comes: the timer scores it

    assert run(go()) == "scored alone"
    assert score.batches[-1] == ["alone"]


def test_a_cancelled_request_is_not_scored():
    score = Scorer()
    gather = batcher.Batcher(score, max_rows=64, max_latency=HOUR)

    async def go():
        cancelled = asyncio.ensure_future(gather.submit("gone"))
        kept = asyncio.ensure_future(gather.submit("kept"))
        await asyncio.sleep(0)  # both are waiting
        cancelled.cancel()
        return await kept

    assert run(go()) == "scored kept"
    assert score.batches == [["kept"]]


@pytest.mark.parametrize(("max_rows", "max_latency", "message"), [(0, 0.002, "maxBatchSize"), (8, -1.0, "maxLatency")])
def test_limits_out_of_range_are_refused_naming_the_field(max_rows, max_latency, message):
    with pytest.raises(ValueError, match=message):
        batcher.Batcher(Scorer(), max_rows=max_rows, max_latency=max_latency)
