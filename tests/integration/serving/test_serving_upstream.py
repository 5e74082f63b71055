"""The router's HTTP/1.1 client against real sockets: framing, keep-alive reuse, stale connections."""

from __future__ import annotations

import asyncio
import time

import pytest

from mlkube.serving import upstream


async def serve(respond) -> tuple[asyncio.AbstractServer, str, list[int]]:
    """A loopback server calling `respond(reader, writer)` per request; returns it, its URL and connection count."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
                )
                body = await reader.readexactly(length)
                if not await respond(head, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


async def echo(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return True


def test_content_length_responses_reuse_one_connection():
    async def scenario():
        server, url, connections = await serve(echo)
        pool = upstream.Pool()
        answers = [
            await pool.request("POST", url + "/v1/models/m:predict", body=b'{"n": %d}' % i, headers={"x-request-id": "r"})
            for i in range(5)
        ]
        pool.close()
        server.close()
        return answers, connections

    answers, connections = asyncio.run(scenario())
    assert [a.body for a in answers] == [b'{"n": %d}' % i for i in range(5)]
    assert answers[0].status == 200 and answers[0].headers["content-type"] == "application/json"
    assert len(connections) == 1


def test_chunked_responses_are_reassembled():
    async def chunked(head, body, writer) -> bool:
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        return True

    async def scenario():
        server, url, _ = await serve(chunked)
        pool = upstream.Pool()
        first = await pool.request("POST", url + "/x", body=b"{}")
        second = await pool.request("POST", url + "/x", body=b"{}")
        pool.close()
        server.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert (first.status, first.body) == (503, b"hello, world") and second.body == b"hello, world"


def test_a_connection_closed_by_the_server_is_retried_on_a_fresh_one():
    async def answer_then_hang_up(head, body, writer) -> bool:
        await echo(head, body, writer)
        return False  # closes without announcing it, like an idle keep-alive timeout

    async def scenario():
        server, url, connections = await serve(answer_then_hang_up)
        pool = upstream.Pool()
        first = await pool.request("POST", url + "/x", body=b"1")
        await asyncio.sleep(0.05)  # the server has closed the pooled connection by now
        second = await pool.request("POST", url + "/x", body=b"2")
        pool.close()
        server.close()
        return first, second, connections

    first, second, connections = asyncio.run(scenario())
    assert (first.body, second.body) == (b"1", b"2") and len(connections) == 2


def test_unreachable_and_silent_backends_raise():
    async def silent(head, body, writer) -> bool:
        await asyncio.sleep(10)
        return False

    async def scenario():
        server, url, _ = await serve(silent)
        pool = upstream.Pool()
        server_port = int(url.rsplit(":", 1)[1])
        with pytest.raises(asyncio.TimeoutError):
            await pool.request("POST", url + "/x", body=b"{}", timeout=0.2)
        server.close()
        await server.wait_closed()
        with pytest.raises(upstream.UpstreamError, match=f"cannot connect to 127.0.0.1:{server_port}"):
            await pool.request("POST", url + "/x", body=b"{}")
        with pytest.raises(upstream.UpstreamError, match="only http://"):
            await pool.request("POST", "https://example.com/x")

    asyncio.run(scenario())


def test_each_exchange_ends_once_and_a_closed_pool_fails_those_in_flight():
    """The callback API: a timed-out exchange is told once (not again when its late answer comes),
    the next request gets a fresh connection, and closing the pool ends what is still waiting."""

    async def late(head, body, writer) -> bool:
        await asyncio.sleep(0.5)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async def scenario():
        server, url, connections = await serve(late)
        pool = upstream.Pool()
        outcomes: list = []
        pool.send("POST", url + "/x", b"{}", b"", 0.1, outcomes.append)
        await asyncio.sleep(0.8)  # past the deadline and past the late answer
        timed_out = list(outcomes)
        in_flight = asyncio.create_task(pool.request("POST", url + "/x", body=b"{}", timeout=30))
        await asyncio.sleep(0.1)
        pool.close()
        with pytest.raises(upstream.UpstreamError, match="pool was closed"):
            await in_flight
        server.close()
        return timed_out, outcomes, connections

    timed_out, outcomes, connections = asyncio.run(scenario())
    assert len(timed_out) == 1 and isinstance(timed_out[0], TimeoutError)
    assert outcomes == timed_out, "the late answer is not delivered to a finished exchange"
    assert len(connections) == 2, "the timed-out connection is closed, not reused"


def test_a_url_the_client_cannot_call_is_an_outcome_not_an_exception():
    """The router forwards inside a callback chain: a backend URL of a table that is not plain
    http reaches `done` (the client hears 502 naming it), it does not escape from `send`."""

    async def scenario():
        pool = upstream.Pool()
        outcomes: list = []
        pool.send("POST", "https://predictor.ml.svc/v1/models/m:predict", b"{}", b"", 1.0, outcomes.append)
        sent_synchronously = list(outcomes)
        await asyncio.sleep(0)
        return sent_synchronously, outcomes

    before, after = asyncio.run(scenario())
    assert before == [], "done is never called from inside send"
    [outcome] = after
    assert isinstance(outcome, upstream.UpstreamError) and "only http://" in str(outcome)


def test_a_pool_used_again_under_a_new_event_loop_still_times_out():
    """A pool outlives an `asyncio.run` (a test, a replay given the router's pool): under the next
    loop its deadline timer is a new one, not the dead loop's."""

    async def silent(head, body, writer) -> bool:
        await asyncio.sleep(10)
        return False

    pool = upstream.Pool()

    async def one_call(timeout: float):
        server, url, _ = await serve(silent)
        try:
            await pool.request("POST", url + "/x", body=b"{}", timeout=timeout)
        finally:
            server.close()

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(one_call(30), 0.3))  # the caller gives up; the pool's timer stays behind
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(one_call(0.2), 10))
    assert time.monotonic() - started < 5, "the pool's own 0.2 s deadline fired, not the caller's 10 s"
