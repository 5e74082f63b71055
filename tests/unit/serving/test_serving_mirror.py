"""Mirrors: copies go off the request path in micro-batches, are split back and judged one by one."""

import asyncio

import orjson
import pytest

from mlkube.serving import mirror, stats

SHADOW = mirror.Target(2, "shadow", judged=2)


class Backend:
    """A fake mirrored version: answers each instance's `x` doubled (or `fail_with` for every call).

    Like a model server, it refuses a whole call (400) when any row has a negative `x`, and
    takes rows as objects `{"x": 1}` or arrays `[1]`, but not both in one call.
    """

    def __init__(self, fail_with: int | None = None, delay: float = 0.0):
        self.calls: list[tuple[str, dict]] = []
        self.fail_with = fail_with
        self.delay = delay

    async def __call__(self, version, protocol, body, headers, timeout):
        doc = orjson.loads(body)
        self.calls.append((protocol, doc))
        await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            return self.fail_with, b'{"error": "boom"}'
        if protocol == "v2":
            return 200, orjson.dumps({"outputs": [{"name": "predict", "data": [doc["inputs"][0]["data"][0] * 2]}]})
        rows = doc["instances"]
        if len({type(row) for row in rows}) > 1:
            return 400, b'{"error": "instances mix objects and arrays"}'
        xs = [row["x"] if isinstance(row, dict) else row[0] for row in rows]
        if any(x < 0 for x in xs):
            return 400, b'{"error": "x: must not be negative"}'
        return 200, orjson.dumps({"predictions": [x * 2 for x in xs]})


def v1(*xs, primary=None) -> mirror.Copy:
    body = orjson.dumps({"instances": [{"x": x} for x in xs]})
    answers = primary if primary is not None else [x * 2 for x in xs]
    return mirror.Copy("v1", body, {"content-type": "application/json"}, orjson.dumps({"predictions": answers}))


async def offer_all(mirrors: mirror.Mirrors, copies, target=SHADOW) -> None:
    for copy in copies:
        mirrors.offer(target, copy)
    await asyncio.sleep(mirrors.max_wait + 0.05)


def test_copies_share_one_call_and_are_judged_one_by_one():
    async def scenario():
        backend, counters = Backend(), stats.Stats()
        mirrors = mirror.Mirrors(backend, counters, max_wait_seconds=0.01)
        await offer_all(mirrors, [v1(1), v1(2, 3), v1(4, primary=[0]), v1(5)])
        return backend, counters.versions[2]

    backend, shadow = asyncio.run(scenario())
    assert backend.calls == [("v1", {"instances": [{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}, {"x": 5}]})]
    assert shadow.requests == 4 and shadow.by_role == {"shadow": 4} and shadow.errors == 0
    assert (shadow.compared, shadow.agreed) == (4, 3), "the copy whose primary said 0 for x=4 disagrees"


def test_a_full_batch_goes_at_once_and_the_rest_waits_for_the_timer():
    async def scenario():
        backend = Backend()
        mirrors = mirror.Mirrors(backend, stats.Stats(), max_batch=3, max_wait_seconds=0.05)
        for x in range(4):
            mirrors.offer(SHADOW, v1(x))
        await asyncio.sleep(0.01)
        sent_at_once = len(backend.calls)
        await asyncio.sleep(0.1)
        return sent_at_once, [len(doc["instances"]) for _, doc in backend.calls]

    sent_at_once, sizes = asyncio.run(scenario())
    assert sent_at_once == 1 and sizes == [3, 1]


def test_bodies_that_cannot_be_merged_go_alone():
    async def scenario():
        backend, counters = Backend(), stats.Stats()
        mirrors = mirror.Mirrors(backend, counters, max_wait_seconds=0.01)
        v2 = mirror.Copy(
            "v2",
            orjson.dumps({"inputs": [{"name": "x", "data": [7]}]}),
            {},
            orjson.dumps({"outputs": [{"name": "predict", "data": [14]}]}),
        )
        with_parameters = mirror.Copy(
            "v1", orjson.dumps({"instances": [{"x": 1}], "parameters": {}}), {}, orjson.dumps({"predictions": [2]})
        )
        await offer_all(mirrors, [v2, with_parameters, v1(3)])
        return backend, counters.versions[2]

    backend, shadow = asyncio.run(scenario())
    assert sorted(protocol for protocol, _ in backend.calls) == ["v1", "v1", "v2"]
    assert shadow.requests == 3 and (shadow.compared, shadow.agreed) == (3, 3)


def test_objects_and_arrays_go_in_separate_calls():
    async def scenario():
        backend, counters = Backend(), stats.Stats()
        mirrors = mirror.Mirrors(backend, counters, max_wait_seconds=0.01)
        as_array = mirror.Copy("v1", orjson.dumps({"instances": [[3], [4]]}), {}, orjson.dumps({"predictions": [6, 8]}))
        await offer_all(mirrors, [v1(1), as_array, v1(2)])
        return backend, counters.versions[2]

    backend, shadow = asyncio.run(scenario())
    assert [doc["instances"] for _, doc in backend.calls] == [[{"x": 1}, {"x": 2}], [[3], [4]]]
    assert (shadow.requests, shadow.errors, shadow.agreed) == (3, 0, 3)


def test_a_refused_batch_is_resent_one_by_one_so_only_the_bad_copy_fails():
    async def scenario():
        backend, counters = Backend(), stats.Stats()
        mirrors = mirror.Mirrors(backend, counters, max_wait_seconds=0.01)
        await offer_all(mirrors, [v1(1), v1(-1), v1(2)])
        return backend, counters.versions[2]

    backend, shadow = asyncio.run(scenario())
    assert len(backend.calls) == 4, "one batch, then each of its three copies"
    assert (shadow.requests, shadow.errors, shadow.compared, shadow.agreed) == (3, 1, 2, 2)
    assert shadow.by_code == {("shadow", 200): 2, ("shadow", 400): 1}


def test_a_failed_call_counts_an_error_for_every_copy_and_compares_nothing():
    async def scenario():
        counters = stats.Stats()
        mirrors = mirror.Mirrors(Backend(fail_with=0), counters, max_wait_seconds=0.01)
        await offer_all(mirrors, [v1(1), v1(2)])
        return counters.versions[2]

    shadow = asyncio.run(scenario())
    assert (shadow.requests, shadow.errors, shadow.compared) == (2, 2, 0)


def test_canary_copies_count_for_the_stable_and_judge_the_canary():
    async def scenario():
        counters = stats.Stats()
        mirrors = mirror.Mirrors(Backend(), counters, max_wait_seconds=0.01)
        await offer_all(mirrors, [v1(1), v1(2, primary=[5])], target=mirror.Target(1, "compare", judged=2))
        return counters

    counters = asyncio.run(scenario())
    assert counters.versions[1].by_role == {"compare": 2} and counters.versions[1].compared == 0
    assert (counters.versions[2].compared, counters.versions[2].agreed) == (2, 1)


@pytest.mark.parametrize("limit", [0, 1])
def test_copies_beyond_the_in_flight_limit_are_skipped_and_counted(limit):
    async def scenario():
        counters = stats.Stats()
        mirrors = mirror.Mirrors(Backend(delay=0.2), counters, limit=limit, max_batch=2, max_wait_seconds=0.01)
        for x in range(5):
            mirrors.offer(SHADOW, v1(x))
        await asyncio.sleep(0.05)
        dropped = counters.mirrors_dropped
        await mirrors.close()
        return dropped

    # limit 0: every copy is skipped; limit 1: the first pair is in flight, the rest is skipped.
    assert asyncio.run(scenario()) == (5 if limit == 0 else 3)


def test_close_drops_waiting_copies_and_cancels_calls():
    async def scenario():
        backend, counters = Backend(delay=10), stats.Stats()
        mirrors = mirror.Mirrors(backend, counters, max_batch=1, max_wait_seconds=10)
        mirrors.offer(SHADOW, v1(1))
        mirrors.offer(mirror.Target(3, "shadow", judged=3), mirror.Copy("v1", b"{}", {}, b"{}"))
        await asyncio.sleep(0.01)
        await mirrors.close()
        return backend, counters

    backend, counters = asyncio.run(scenario())
    assert len(backend.calls) == 2 and counters.versions == {}
