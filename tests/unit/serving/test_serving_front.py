"""The router's front door on a fake transport: plain inference requests answered on the lean
path, in order; anything else, with every byte not yet answered, handed to aiohttp's protocol."""

from __future__ import annotations

import asyncio

import pytest

from mlkube.serving import front

PATH = "/v1/models/churn:predict"


class Transport(asyncio.Transport):
    """Records what is written, whether it was closed, and who its protocol is."""

    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.protocol = None

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol


class Fallback(asyncio.Protocol):
    """Stands in for aiohttp's RequestHandler: keeps the bytes it is given."""

    def __init__(self):
        self.transport = None
        self.received = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data


def request(body: bytes = b'{"instances": [[1]]}', path: str = PATH, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: router", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def connect(*chunks: bytes, max_body_bytes: int = 1000, reply_at_once: bool = False, handle=None):
    """Feed `chunks` to a fresh connection; (transport, handled requests, fallbacks made). The
    handler replies on the loop's next turn (as the router does, after its backend answered) or,
    with `reply_at_once`, before it returns (as the router's refusals do)."""
    handled: list[front.Request] = []
    fallbacks: list[Fallback] = []

    def answer(req: front.Request, reply) -> None:
        handled.append(req)
        answer = front.Answer(200, b'{"n": %d}' % len(handled), (("content-type", "application/json"), ("x-request-id", "r")))
        if reply_at_once:
            reply(answer)
        else:
            asyncio.get_running_loop().call_soon(reply, answer)

    def fallback() -> Fallback:
        fallbacks.append(Fallback())
        return fallbacks[-1]

    async def go() -> Transport:
        transport = Transport()
        connection = front.Connection(
            handle=handle or answer,
            is_hot=lambda path: path == PATH,
            fallback=fallback,
            max_body_bytes=max_body_bytes,
            server_software="test",
        )
        connection.connection_made(transport)
        for chunk in chunks:
            connection.data_received(chunk)
            for _ in range(500):  # let the answers be written
                await asyncio.sleep(0)
        return transport

    return asyncio.run(go()), handled, fallbacks


def responses(written: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """(status line, headers, body) of each response in `written`."""
    out, rest = [], bytes(written)
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        out.append((status, headers, rest[:length]))
        rest = rest[length:]
    return out


def test_a_plain_inference_request_is_answered_on_the_lean_path():
    transport, handled, fallbacks = connect(request(x_request_id="abc", content_type="application/json"))
    assert [(r.path, r.headers["x-request-id"], r.headers["content-type"], r.body) for r in handled] == [
        (PATH, "abc", "application/json", b'{"instances": [[1]]}')
    ]
    [(status, headers, body)] = responses(transport.written)
    assert status == "HTTP/1.1 200 OK" and body == b'{"n": 1}'
    assert headers["content-type"] == "application/json" and headers["x-request-id"] == "r"
    assert headers["server"] == "test" and headers["date"].endswith("GMT")
    assert not fallbacks and not transport.closed


def test_pipelined_and_split_requests_are_answered_in_order():
    both = request(b"[1]") + request(b"[22]")
    transport, handled, _ = connect(both[:7], both[7:60], both[60:])
    assert [r.body for r in handled] == [b"[1]", b"[22]"]
    assert [body for _, _, body in responses(transport.written)] == [b'{"n": 1}', b'{"n": 2}']


def test_a_pipelined_burst_answered_at_once_is_answered_in_order():
    burst = b"".join(request(b"[%d]" % i) for i in range(200))
    transport, handled, _ = connect(burst, reply_at_once=True)
    assert [r.body for r in handled] == [b"[%d]" % i for i in range(200)]
    assert [body for _, _, body in responses(transport.written)] == [b'{"n": %d}' % (i + 1) for i in range(200)]


def test_a_handler_that_fails_gets_the_client_a_500_and_a_second_reply_is_dropped():
    def failing(req, reply) -> None:
        raise RuntimeError("a bug")

    transport, _, _ = connect(request(), handle=failing)
    [(status, headers, _)] = responses(transport.written)
    assert status == "HTTP/1.1 500 Internal Server Error" and headers["connection"] == "close" and transport.closed

    def twice(req, reply) -> None:
        reply(front.Answer(200, b"first", ()))
        reply(front.Answer(200, b"second", ()))

    transport, _, _ = connect(request(), handle=twice)
    assert [body for _, _, body in responses(transport.written)] == [b"first"]


def test_connection_close_is_honoured():
    transport, handled, _ = connect(request(connection="close"))
    [(_, headers, _)] = responses(transport.written)
    assert headers["connection"] == "close" and transport.closed and len(handled) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /metrics HTTP/1.1\r\nHost: router\r\n\r\n",
        request(path="/v1/feedback"),
        request(path=PATH + "?x=1"),
        request(transfer_encoding="chunked"),
        request(expect="100-continue"),
        request(b"x" * 1001),
        request().replace(b"HTTP/1.1", b"HTTP/1.0"),
        request().replace(b"Host: router", b"Host : router"),
        request().replace(b"Host: router", b"Host: router\r\n folded"),
        request().replace(b"Content-Length: 20", b"Content-Length: 20\r\nContent-Length: 20"),
        request().replace(b"router", "r\u00f6uter".encode()),
    ],
    ids=[
        "get",
        "feedback",
        "query",
        "chunked",
        "expect",
        "too-large",
        "http-1.0",
        "space",
        "folding",
        "two-lengths",
        "non-ascii",
    ],
)
def test_anything_but_a_plain_inference_request_goes_to_aiohttp_with_all_its_bytes(raw):
    transport, handled, fallbacks = connect(raw[:10], raw[10:] + request())
    assert not handled and transport.written == b""
    [fallback] = fallbacks
    assert transport.protocol is fallback and fallback.transport is transport
    assert bytes(fallback.received) == raw + request(), "the request and what followed it"


def test_after_an_answered_request_the_next_one_may_still_go_to_aiohttp():
    metrics = b"GET /metrics HTTP/1.1\r\nHost: router\r\n\r\n"
    transport, handled, fallbacks = connect(request(b"[1]") + metrics)
    assert [r.body for r in handled] == [b"[1]"] and len(responses(transport.written)) == 1
    assert bytes(fallbacks[0].received) == metrics


def test_a_head_too_long_to_be_plain_goes_to_aiohttp():
    endless = b"POST " + PATH.encode() + b" HTTP/1.1\r\nX-Long: " + b"a" * (front.HEAD_LIMIT + 1)
    _, handled, fallbacks = connect(endless)
    assert not handled and bytes(fallbacks[0].received) == endless
