"""A real Prometheus server (Debian's ``prometheus`` binary) scraping a gauge the test sets.

``Gauge`` serves ``/metrics`` in the Prometheus text format on 127.0.0.1; ``Prometheus`` runs the
server on a free port with a 1 s scrape interval of that gauge. Tests skip where the binary is
absent (``apt-get install prometheus``; .ci/run installs it).
"""

from __future__ import annotations

import http.server
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

STARTUP_TIMEOUT = 30.0


def binary() -> str:
    """The prometheus binary, or a skip saying how to get it."""
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus; .ci/run installs it)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gauge:
    """``name value`` at http://127.0.0.1:port/metrics; ``set`` changes what the next scrape reads."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value = name, value
        gauge = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"# TYPE {gauge.name} gauge\n{gauge.name} {gauge.value!r}\n".encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, value: float) -> None:
        self.value = value

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(gauge: Gauge, workdir: pathlib.Path) -> Iterator[str]:
    """Prometheus scraping ``gauge`` every second; yields its address, stops it afterwards."""
    prometheus = binary()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: gauge\n    static_configs: [{{targets: ['127.0.0.1:{gauge.port}']}}]\n"
    )
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 (the server's)
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{address}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready after {STARTUP_TIMEOUT}s; see {log.name}")
            time.sleep(0.2)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
