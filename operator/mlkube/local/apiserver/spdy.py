"""SPDY/3.1 framing, as kubectl's port-forward speaks it inside a WebSocket (`SPDY/3.1+portforward.k8s.io`).

kubectl 1.32 tunnels a SPDY/3.1 session through WebSocket binary messages (client-go
`tunneling_connection.go`: the messages concatenate into one byte stream). Owns the frame
grammar (control frames SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
WINDOW_UPDATE; DATA frames) and the per-direction zlib header compression with the SPDY/3
dictionary. Sans I/O: `Codec.feed` turns bytes into frames, the encoders return bytes.
Flow control is not enforced (client-go's spdystream does not enforce it either).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
MAX_DATA = 32 * 1024  # bytes per DATA frame this side sends
MAX_FRAME = 1 << 24  # a frame's 24-bit length limit

# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1), 1423 bytes.
HEADER_DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00"
    b"\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00"
    b"\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\raccept-ranges\x00\x00\x00\x03age"
    b"\x00\x00\x00\x05allow\x00\x00\x00\rauthorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnect"
    b"ion\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language"
    b"\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00"
    b"\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00"
    b"\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00"
    b"\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range"
    b"\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\rlast-modified\x00\x00\x00\x08location\x00\x00"
    b"\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13prox"
    b"y-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00"
    b"\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00"
    b"\x00\x07upgrade\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07wa"
    b"rning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06st"
    b"atus\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00"
    b"\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin10010120"
    b"1202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Author"
    b"itative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidd"
    b"en404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Ap"
    b"r May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/h"
    b"tml,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascri"
    b"pt,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3.1 frames."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded frame. `kind` is a control frame type, or 0 for DATA."""

    kind: int
    flags: int = 0
    stream_id: int = 0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    data: bytes = b""
    value: int = 0  # RST_STREAM status, PING id, GOAWAY last stream, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Codec:
    """One SPDY session's two header compression contexts and its receive buffer."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, HEADER_DICTIONARY)

    # -- reading ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by `data` (a frame may span several WebSocket messages); ProtocolError on garbage."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame(0, flags, struct.unpack(">I", head[:4])[0] & 0x7FFFFFFF, data=payload)
        version, kind = struct.unpack(">HH", head[:4])
        if version & 0x7FFF != VERSION:
            raise ProtocolError(f"SPDY version {version & 0x7FFF} is not supported (only {VERSION})")
        if kind == SYN_STREAM:
            stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            return Frame(kind, flags, stream_id, headers=self._headers(payload[10:]))
        if kind in (SYN_REPLY, HEADERS):
            stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            return Frame(kind, flags, stream_id, headers=self._headers(payload[4:]))
        if kind in (RST_STREAM, WINDOW_UPDATE):
            stream_id, value = struct.unpack(">II", payload[:8])
            return Frame(kind, flags, stream_id & 0x7FFFFFFF, value=value)
        if kind in (PING, GOAWAY):
            return Frame(kind, flags, value=struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF)
        return Frame(kind, flags, data=payload)  # SETTINGS and anything newer: ignored by the caller

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"SPDY header block does not decompress: {exc}") from exc
        headers: dict[str, str] = {}
        try:
            (count,), offset = struct.unpack(">I", raw[:4]), 4
            for _ in range(count):
                (size,) = struct.unpack(">I", raw[offset : offset + 4])
                name = raw[offset + 4 : offset + 4 + size].decode()
                offset += 4 + size
                (size,) = struct.unpack(">I", raw[offset : offset + 4])
                headers[name.lower()] = raw[offset + 4 : offset + 4 + size].decode()
                offset += 4 + size
        except (struct.error, UnicodeDecodeError) as exc:
            raise ProtocolError(f"SPDY header block is malformed: {exc}") from exc
        return headers

    # -- writing ---------------------------------------------------------------------------
    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, *, fin: bool = False) -> bytes:
        pairs = sorted((headers or {}).items())
        raw = struct.pack(">I", len(pairs))
        for name, value in pairs:
            raw += struct.pack(">I", len(name)) + name.lower().encode() + struct.pack(">I", len(value.encode())) + value.encode()
        block = self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data(stream_id: int, payload: bytes = b"", *, fin: bool = False) -> bytes:
    """DATA frames carrying `payload` (split at MAX_DATA); the last one carries FIN when `fin`."""
    chunks = [payload[i : i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)] or [b""]
    frames = b""
    for index, chunk in enumerate(chunks):
        flags = FLAG_FIN if fin and index == len(chunks) - 1 else 0
        frames += struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(chunk)) + chunk
    return frames


def ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack(">I", ping_id))


def rst_stream(stream_id: int, status: int = RST_CANCEL) -> bytes:
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def goaway(last_stream_id: int) -> bytes:
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id, 0))
