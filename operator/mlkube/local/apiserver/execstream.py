"""`pods/exec`: run a command in a running container's environment, streamed over WebSocket.

Speaks the remotecommand WebSocket protocols kubectl 1.32 negotiates first, `v5.channel.k8s.io`
and `v4.channel.k8s.io` (apimachinery `wsstream`): binary messages whose first byte is the
channel (0 stdin, 1 stdout, 2 stderr, 3 error: the final `Status` carrying the exit code,
4 terminal resize, 255 v5 "close stream", whose payload names the stream the client closed).
The command starts with the container's environment and working directory as the runtime
recorded them (runtime/execenv.py). It is a process of the local user beside the container's:
no filesystem, PID or network namespace is entered, and `-t` gets no terminal (output is
piped). SPDY (kubectl's fallback) is refused with a Status naming the WebSocket protocols.
Must not write storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from typing import Any

from aiohttp import WSMsgType, web

from mlkube.local.apiserver import errors
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
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if request.headers.get("Upgrade", "").lower() != "websocket" or not set(offered) & set(PROTOCOLS):
        raise errors.bad_request(
            f"the local API server streams exec over WebSocket ({', '.join(PROTOCOLS)}) only; "
            "kubectl 1.30+ uses it unless KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false"
        )
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True, max_msg_size=0)
    await ws.prepare(request)
    session = _Session(ws, command, recorded, stdin=_flag(request, "stdin"))
    await session.run(stdout=_flag(request, "stdout"), stderr=_flag(request, "stderr"))
    return ws


class _Session:
    def __init__(self, ws: web.WebSocketResponse, command: list[str], recorded: execenv.ExecEnv, *, stdin: bool) -> None:
        self._ws = ws
        self._command = command
        self._recorded = recorded
        self._stdin = stdin
        self._send_lock = asyncio.Lock()

    async def _send(self, channel: int, payload: bytes) -> None:
        async with self._send_lock:
            if not self._ws.closed:
                with contextlib.suppress(ConnectionResetError):
                    await self._ws.send_bytes(bytes([channel]) + payload)

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
        await self._ws.close()

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int | None) -> None:
        assert stream is not None
        while chunk := await stream.read(READ_CHUNK):
            if channel is not None:
                await self._send(channel, chunk)

    async def _read_client(self, process: asyncio.subprocess.Process) -> None:
        """Client messages: stdin data, v5 close of stdin, resize (ignored: no terminal). A closed socket kills the command."""
        stdin = process.stdin
        async for message in self._ws:
            data = channel_message(message)
            if not data:
                continue
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
