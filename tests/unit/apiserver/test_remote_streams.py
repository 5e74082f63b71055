"""The wire formats of exec and port-forward: SPDY/3.1 frames as kubectl's port-forward sends them
(headers zlib-compressed with the SPDY/3 dictionary), the exec error channel's Status, and exec's
SPDY streams seen as channels."""

import asyncio
import hashlib
import struct
import zlib

import pytest

from mlkube.local.apiserver import execspdy, execstream, spdy


class Client:
    """kubectl's side of a SPDY session: its own header compressor, as spdystream's Framer."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, spdy.HEADER_DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=spdy.HEADER_DICTIONARY)

    def syn_stream(self, stream_id: int, headers: dict[str, str], flags: int = 0) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value.encode()
        block = self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + block
        return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, (flags << 24) | len(payload)) + payload

    def read_headers(self, frame: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(frame[12:])
        (count,), offset, headers = struct.unpack(">I", raw[:4]), 4, {}
        for _ in range(count):
            (size,) = struct.unpack(">I", raw[offset : offset + 4])
            name = raw[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
            (size,) = struct.unpack(">I", raw[offset : offset + 4])
            headers[name] = raw[offset + 4 : offset + 4 + size].decode()
            offset += 4 + size
        return headers


def test_the_dictionary_is_spdy3s():
    assert len(spdy.HEADER_DICTIONARY) == 1423
    assert hashlib.sha256(spdy.HEADER_DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    )


def test_port_forward_streams_decode_across_websocket_messages_and_share_one_compression_context():
    client, codec = Client(), spdy.Codec()
    error = client.syn_stream(1, {"streamtype": "error", "port": "8000", "requestid": "0"})
    data = client.syn_stream(3, {"streamtype": "data", "port": "8000", "requestid": "0"})
    wire = error + data + spdy.data(3, b"GET / HTTP/1.1\r\n\r\n") + spdy.ping(1)
    frames = []
    for cut in range(0, len(wire), 7):  # messages do not follow frame boundaries
        frames += codec.feed(wire[cut : cut + 7])
    assert [(f.kind, f.stream_id) for f in frames] == [(spdy.SYN_STREAM, 1), (spdy.SYN_STREAM, 3), (0, 3), (spdy.PING, 0)]
    assert frames[0].headers == {"streamtype": "error", "port": "8000", "requestid": "0"}
    assert frames[1].headers["streamtype"] == "data"
    assert frames[2].data == b"GET / HTTP/1.1\r\n\r\n" and not frames[2].fin
    assert frames[3].value == 1


def test_replies_and_data_are_what_spdystream_reads():
    client, codec = Client(), spdy.Codec()
    first, second = codec.syn_reply(1), codec.syn_reply(3)
    assert struct.unpack(">HH", first[:4]) == (0x8003, spdy.SYN_REPLY)
    assert struct.unpack(">I", first[8:12])[0] == 1
    assert client.read_headers(first) == {} and client.read_headers(second) == {}
    big = spdy.data(5, b"x" * (spdy.MAX_DATA + 10), fin=True)
    frames = spdy.Codec().feed(big)
    assert [len(f.data) for f in frames] == [spdy.MAX_DATA, 10]
    assert [f.fin for f in frames] == [False, True]
    assert spdy.Codec().feed(spdy.data(5, fin=True))[0].fin


def test_garbage_is_a_protocol_error():
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        spdy.Codec().feed(struct.pack(">HHI", 0x8002, spdy.SYN_STREAM, 0))


def test_the_exec_error_channel_carries_the_exit_code_as_kubelet_reports_it():
    assert execstream.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = execstream.exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_exec_names_the_container_or_refuses_as_upstream():
    pod = {
        "metadata": {"name": "p", "annotations": {"kubectl.kubernetes.io/default-container": "b"}},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "b", "state": {"running": {}}}]},
    }
    assert execstream.container_name(pod, "") == "b"
    execstream.running_container(pod, "b")
    with pytest.raises(execstream.errors.APIError, match="container c is not valid for pod p"):
        execstream.container_name(pod, "c")
    with pytest.raises(execstream.errors.APIError, match="container a is not running"):
        execstream.running_container(pod, "a")
    pod["status"]["phase"] = "Succeeded"
    with pytest.raises(execstream.errors.APIError, match="completed pod"):
        execstream.running_container(pod, "b")


class FakeRaw:
    """An upgraded connection: what the client sends, then the end; what the server writes is kept."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = [incoming[i : i + 5] for i in range(0, len(incoming), 5)]
        self.written = b""
        self.closed = False

    async def receive(self) -> bytes:
        return self.incoming.pop(0) if self.incoming else b""

    async def send(self, data: bytes) -> None:
        self.written += data

    async def close(self) -> None:
        self.closed = True


def test_exec_over_spdy_maps_the_clients_streams_onto_channels():
    client = Client()
    wire = (
        client.syn_stream(1, {"streamtype": "error"})
        + client.syn_stream(3, {"streamtype": "stdin"})
        + client.syn_stream(5, {"streamtype": "stdout"})
        + spdy.data(3, b"hello\n", fin=True)
    )
    raw = FakeRaw(wire)
    channels = execspdy.SpdyChannels(raw, {0, 1, 3})

    async def scenario() -> list[bytes]:
        assert await channels.open()
        received = [message async for message in channels.messages()]
        await channels.send(1, b"out")
        await channels.close()
        return received

    assert asyncio.run(scenario()) == [b"\x00hello\n", b"\xff\x00"]  # stdin data, then stdin closed
    frames = spdy.Codec().feed(raw.written)
    assert [(f.kind, f.stream_id) for f in frames[:3]] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3), (spdy.SYN_REPLY, 5)]
    assert (frames[3].stream_id, frames[3].data) == (5, b"out")
    assert [(f.stream_id, f.fin) for f in frames[4:]] == [(5, True), (1, True)]
    assert raw.closed
