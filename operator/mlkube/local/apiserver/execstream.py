"""`pods/exec`: run a command in a running container's environment, streamed over WebSocket.

Speaks the remotecommand WebSocket protocols kubectl 1.32 negotiates first, `v5.channel.k8s.io`
and `v4.channel.k8s.io` (apimachinery `wsstream`): binary messages whose first byte is the
channel (0 stdin, 1 stdout, 2 stderr, 3 error: the final `Status` carrying the exit code,
4 terminal resize, 255 v5 "close stream", whose payload names the stream the client closed);
the same session over a connection upgraded to SPDY/3.1 (kubectl's fallback) goes through execspdy.py.
The command starts with the container's environment and working directory as the runtime
recorded them (runtime/execenv.py). It is a process of the local user beside the container's:
no filesystem, PID or network namespace is entered. With `tty` it runs on a pseudo-terminal
(`_TerminalSession`).
Must not write storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import struct
import sys
import termios
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from mlkube.local.apiserver import errors, execspdy, upgrade
from mlkube.local.runtime import execenv

logger = logging.getLogger(__name__)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
READ_CHUNK = 32 * 1024


def container_name(pod: dict[str, Any], requested: str) -> str:
    """The container a request names, or the pod's default one (upstream wording on errors)."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    init_names = [c.get("name", "") for c in spec.get("initContainers") or []]
    pod_name = pod["metadata"]["name"]
    if not requested:
        default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if default in names:
            return default
        if len(names) == 1:
            return names[0]
        raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(names)}]")
    if requested not in names + init_names:
        raise errors.bad_request(f"container {requested} is not valid for pod {pod_name}")
    return requested


def running_container(pod: dict[str, Any], container: str) -> None:
    """400 unless `container` of `pod` is running now (what kubelet checks before an exec or port-forward)."""
    status = pod.get("status") or {}
    pod_name = pod["metadata"]["name"]
    if status.get("phase") in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot exec into a container in a completed pod; current phase is {status['phase']}")
    entries = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    for entry in entries:
        if entry.get("name") == container and "running" in (entry.get("state") or {}):
            return
    raise errors.bad_request(f"container {container} is not running in pod {pod_name}: the process runtime has not started it")


def channel_message(message: Any) -> bytes:
    """A client message's bytes: binary, or text (the Python client sends str data as text frames,
    the channel number its first character), as apimachinery's wsstream accepts both."""
    if message.type == WSMsgType.BINARY:
        return bytes(message.data)
    if message.type == WSMsgType.TEXT:
        return str(message.data).encode()
    return b""


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The error channel's final `Status`: Success, or NonZeroExitCode with the code as kubelet reports it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {command}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def serve(request: web.Request, pod: dict[str, Any], *, state_dir: str) -> web.StreamResponse:
    """Upgrade to WebSocket and run the command; errors before the upgrade are plain Status responses."""
    command = request.query.getall("command", [])
    if not command:
        raise errors.bad_request("you must specify at least 1 command")
    container = container_name(pod, request.query.get("container", ""))
    running_container(pod, container)
    recorded = execenv.read(state_dir, pod["metadata"]["uid"], container)
    if recorded is None:
        raise errors.bad_request(f"container {container} of pod {pod['metadata']['name']} has no recorded environment yet")
    tty, stdin = _flag(request, "tty"), _flag(request, "stdin")
    kind = _TerminalSession if tty else _Session
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if request.headers.get("Upgrade", "").lower() == "websocket" and set(offered) & set(PROTOCOLS):
        ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        await kind(_WebSocketChannels(ws), command, recorded, stdin=stdin).run(
            stdout=_flag(request, "stdout"), stderr=_flag(request, "stderr")
        )
        return ws
    if upgrade.wants(request, execspdy.STREAM_PROTOCOL):  # kubectl's fallback, and older kubectl
        raw = upgrade.RawStream(request)
        response = await raw.start(execspdy.STREAM_PROTOCOL)
        wanted = {
            "error": True,
            "stdin": stdin,
            "stdout": _flag(request, "stdout"),
            "stderr": _flag(request, "stderr") and not tty,
        }
        wanted["resize"] = tty
        channels = execspdy.SpdyChannels(raw, {execspdy.STREAM_TYPES[name] for name, on in wanted.items() if on})
        if await channels.open():
            await kind(channels, command, recorded, stdin=stdin).run(stdout=wanted["stdout"], stderr=wanted["stderr"])
        await channels.close()
        return response
    raise errors.bad_request(
        f"exec needs an upgrade to WebSocket ({', '.join(PROTOCOLS)}) or to SPDY/3.1 ({execspdy.STREAM_PROTOCOL})"
    )


class _WebSocketChannels:
    """Channel-numbered binary messages on a WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send(self, channel: int, payload: bytes) -> None:
        if not self._ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self._ws.send_bytes(bytes([channel]) + payload)

    async def messages(self) -> AsyncIterator[bytes]:
        async for message in self._ws:
            data = channel_message(message)
            if data:
                yield data

    async def close(self) -> None:
        await self._ws.close()


class _Session:
    def __init__(
        self, channels: _WebSocketChannels | execspdy.SpdyChannels, command: list[str], recorded: execenv.ExecEnv, *, stdin: bool
    ) -> None:
        self._channels = channels
        self._command = command
        self._recorded = recorded
        self._stdin = stdin
        self._send_lock = asyncio.Lock()

    async def _send(self, channel: int, payload: bytes) -> None:
        async with self._send_lock:
            await self._channels.send(channel, payload)

    async def run(self, *, stdout: bool, stderr: bool) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                env=self._recorded.env,
                cwd=self._recorded.cwd if os.path.isdir(self._recorded.cwd) else None,  # noqa: ASYNC240 (a local stat)
                stdin=asyncio.subprocess.PIPE if self._stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            # What a container runtime reports for a missing or unrunnable program, with the shell's codes.
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            await self._send(STDERR, f'exec: "{self._command[0]}": {exc.strerror}\n'.encode())
            await self._finish(exit_status(code, self._command))
            return
        pumps = [
            asyncio.create_task(self._pump(process.stdout, STDOUT if stdout else None)),
            asyncio.create_task(self._pump(process.stderr, STDERR if stderr else None)),
        ]
        reader = asyncio.create_task(self._read_client(process))
        try:
            await asyncio.gather(*pumps)
            code = await process.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if process.returncode is None:  # the client went away: stop what it started
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        await self._finish(exit_status(128 - code if code < 0 else code, self._command))

    async def _finish(self, status: dict[str, Any]) -> None:
        await self._send(ERROR, json.dumps(status).encode())
        await self._channels.close()

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int | None) -> None:
        assert stream is not None
        while chunk := await stream.read(READ_CHUNK):
            if channel is not None:
                await self._send(channel, chunk)

    async def _read_client(self, process: asyncio.subprocess.Process) -> None:
        """Client messages: stdin data, v5 close of stdin (resize needs `tty`). A closed socket kills the command."""
        stdin = process.stdin
        async for data in self._channels.messages():
            channel, payload = data[0], data[1:]
            if channel == STDIN and stdin is not None and payload:
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    stdin.write(payload)
                    await stdin.drain()
            elif channel == CLOSE and payload[:1] == bytes([STDIN]) and stdin is not None:
                stdin.close()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


# Run by the runtime's interpreter as `python -c _WITH_TERMINAL COMMAND...` on a pty's slave: a new
# session whose controlling terminal is that pty (job control, ^C), then the command itself.
_WITH_TERMINAL = """
import fcntl, os, sys, termios
os.setsid()
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    sys.stderr.write(f'exec: "{sys.argv[1]}": {exc.strerror}\\n')
    sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
"""
DRAIN_SECONDS = 1.0  # output still buffered in the pty after the command exited


class _TerminalSession(_Session):
    """`-t`: the command on a pseudo-terminal. Its output (stdout and stderr merged, as on a terminal) goes
    to the stdout channel, stdin is typed into the terminal (a v5 close sends ^D), resize messages
    (`{"Width": w, "Height": h}`) set the window size."""

    async def run(self, *, stdout: bool, stderr: bool) -> None:
        master, slave = os.openpty()
        env = {"TERM": "xterm", **self._recorded.env}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _WITH_TERMINAL,
                *self._command,
                env=env,
                cwd=self._recorded.cwd if os.path.isdir(self._recorded.cwd) else None,  # noqa: ASYNC240 (a local stat)
                stdin=slave,
                stdout=slave,
                stderr=slave,
            )
        except OSError as exc:
            os.close(master)
            await self._send(STDOUT, f"exec: {exc.strerror}\r\n".encode())
            await self._finish(exit_status(126, self._command))
            return
        finally:
            os.close(slave)
        output: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = os.read(master, READ_CHUNK)
            except OSError:  # EIO: every holder of the terminal has closed it
                data = b""
            if not data:
                loop.remove_reader(master)
            output.put_nowait(data)

        loop.add_reader(master, readable)
        pump = asyncio.create_task(self._pump_terminal(output, stdout))
        reader = asyncio.create_task(self._read_terminal_client(process, master))
        try:
            code = await process.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), DRAIN_SECONDS)
        finally:
            for task in (pump, reader):
                task.cancel()
            await asyncio.gather(pump, reader, return_exceptions=True)
            loop.remove_reader(master)
            os.close(master)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        await self._finish(exit_status(128 - code if code < 0 else code, self._command))

    async def _pump_terminal(self, output: asyncio.Queue[bytes], stdout: bool) -> None:
        while data := await output.get():
            if stdout:
                await self._send(STDOUT, data)

    async def _read_terminal_client(self, process: asyncio.subprocess.Process, master: int) -> None:
        async for data in self._channels.messages():
            channel, payload = data[0], data[1:]
            with contextlib.suppress(OSError):
                if channel == STDIN and self._stdin and payload:
                    os.write(master, payload)
                elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                    os.write(master, b"\x04")  # ^D: end of input on a terminal
                elif channel == RESIZE:
                    size = _window_size(payload)
                    if size is not None:
                        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def _window_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) of a resize message, or None when it is not one."""
    try:
        size = json.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    return (width, height) if 0 < width < 65536 and 0 < height < 65536 else None
