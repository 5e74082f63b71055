"""The serving benchmark's load generator (`benchmarks/serving.py`, `measure`) against small
loopback servers: it counts only whole answers, sends each request whole, and stops with the
reason on an error status, an answer it cannot frame, or a connection closed under a request.
Its figures are the benchmark's, so a miscounted or half-read answer would be a wrong RESULT."""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).parents[3] / "benchmarks" / "serving.py"
_spec = importlib.util.spec_from_file_location("serving_benchmark", SCRIPT)
serving_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serving_benchmark)

BODY = b'{"instances": [[1.0, 2.0]]}'


async def serve(answer) -> tuple[asyncio.Server, list[bytes], str]:
    """A server that reads whole requests (Content-Length) and replies with `answer(writer, n)`."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")).split(b":")[1]
                )
                received.append(head + await reader.readexactly(length))
                if not await answer(writer, len(received)):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, received, f"http://127.0.0.1:{port}/v1/models/m:predict"


async def ok_in_pieces(writer: asyncio.StreamWriter, _n: int) -> bool:
    """A 200 whose head and body arrive in separate writes (the generator must wait for the rest)."""
    body = b'{"predictions": [1]}'
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: ")
    await writer.drain()
    await asyncio.sleep(0)
    writer.write(str(len(body)).encode() + b"\r\n\r\n" + body[:5])
    await writer.drain()
    await asyncio.sleep(0.001)
    writer.write(body[5:])
    return True


def test_every_request_is_sent_whole_and_every_answer_counted_once():
    async def scenario():
        server, received, url = await serve(ok_in_pieces)
        async with server:
            result = await serving_benchmark.measure(url, BODY, requests=50, concurrency=4)
        return result, received

    result, received = asyncio.run(scenario())
    assert len(received) == 50
    assert all(
        request.startswith(b"POST /v1/models/m:predict HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n" + BODY)
        for request in received
    )
    assert result["rps"] > 0
    assert 1.0 <= result["p50"] <= result["p99"]  # each answer's last piece comes at least 1 ms after its head


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}", "HTTP 503"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", "without Content-Length"),
    ],
)
def test_an_answer_it_cannot_count_stops_the_run_with_the_reason(answer, reason):
    async def reply(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(answer if n == 3 else b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def scenario():
        server, _, url = await serve(reply)
        async with server:
            await serving_benchmark.measure(url, BODY, requests=20, concurrency=2)

    with pytest.raises(RuntimeError, match=reason):
        asyncio.run(scenario())


def test_a_connection_closed_under_a_request_stops_the_run():
    async def close_on_the_fifth(writer: asyncio.StreamWriter, n: int) -> bool:
        if n == 5:
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def scenario():
        server, _, url = await serve(close_on_the_fifth)
        async with server:
            await serving_benchmark.measure(url, BODY, requests=20, concurrency=2)

    with pytest.raises(RuntimeError, match="connection closed mid-run"):
        asyncio.run(scenario())


def test_in_turn_gives_each_url_its_own_p50():
    async def slow(writer: asyncio.StreamWriter, _n: int) -> bool:
        await asyncio.sleep(0.004)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def fast(writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        return True

    async def scenario():
        fast_server, fast_received, fast_url = await serve(fast)
        slow_server, slow_received, slow_url = await serve(slow)
        async with fast_server, slow_server:
            p50s = await serving_benchmark.in_turn([fast_url, slow_url], BODY, requests=20)
        return p50s, len(fast_received), len(slow_received)

    (fast_p50, slow_p50), fast_count, slow_count = asyncio.run(scenario())
    assert (fast_count, slow_count) == (20, 20)
    assert slow_p50 >= 4.0 > fast_p50
