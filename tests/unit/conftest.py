"""Unit tests are pure: no processes, no network sockets. A test that starts either fails here
with the reason; it belongs under tests/integration/."""

from __future__ import annotations

import socket
import subprocess

import pytest


class ImpureTest(AssertionError):
    """A unit test started a process or opened a network socket."""


@pytest.fixture(autouse=True)
def no_processes_or_sockets(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    where = request.node.nodeid

    def refuse_process(*_args, **_kwargs):
        raise ImpureTest(f"{where} starts a process: move it to tests/integration/")

    def guard(original):
        def guarded(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6):
                raise ImpureTest(f"{where} opens a network socket to {address!r}: move it to tests/integration/")
            return original(self, address)

        return guarded

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_process)
    monkeypatch.setattr(socket.socket, "bind", guard(socket.socket.bind))
    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))
