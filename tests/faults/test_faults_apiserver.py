"""Fault injection on the embedded API server (`python -m mlkube.local.apiserver`, loopback only, each bounded in time).

SIGKILL during a stream of writes, a torn WAL tail, a corrupt row at startup, two servers on one
state directory, and the disk filling up while writing. Each asserts what a user sees afterwards:
every acknowledged write is there, the server starts, and refusals say why. The counts are printed
(run with -s) for the README's reliability table.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pathlib
import resource
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import yaml

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}
STARTUP_TIMEOUT = 20.0


class Server:
    """One API server process on a state directory; `preexec` runs in the child before exec (e.g. rlimits)."""

    def __init__(self, state_dir: pathlib.Path, *, preexec: Callable[[], None] | None = None) -> None:
        self.state_dir = state_dir
        self.preexec = preexec
        self.process: subprocess.Popen | None = None
        self.log = state_dir.parent / f"{state_dir.name}.log"
        self.url = ""
        self.token = ""

    def start(self) -> Server:
        kubeconfig = self.state_dir / "kubeconfig"
        kubeconfig.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlkube.local.apiserver", "--state-dir", str(self.state_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not kubeconfig.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"the API server exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the API server did not start within {STARTUP_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.05)
        config = yaml.safe_load(kubeconfig.read_text())
        self.url = config["clusters"][0]["cluster"]["server"]
        self.token = config["users"][0]["user"]["token"]
        return self

    def client(self, *, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.state_dir / "ca.crt")),
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Iterator[Callable[..., Server]]:
    """A factory of servers on `tmp_path/state` (the same directory each time unless told); all stopped afterwards."""
    started: list[Server] = []

    def make(*, state: str = "state", preexec: Callable[[], None] | None = None) -> Server:
        directory = tmp_path / state
        directory.mkdir(exist_ok=True)
        server = Server(directory, preexec=preexec)
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


def _names(http: httpx.Client) -> dict[str, dict]:
    response = http.get(CM)
    assert response.status_code == 200, response.text
    return {item["metadata"]["name"]: item for item in response.json()["items"]}


def test_sigkill_during_a_stream_of_writes_loses_no_acknowledged_write(servers):
    server = servers().start()
    acknowledged: set[str] = set()
    last_counter: dict[int, int] = {}  # worker -> the last counter value a 200 acknowledged
    attempted = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def worker(number: int) -> None:
        with server.client(timeout=5) as http:
            created = http.post(CM, json={"metadata": {"name": f"counter-{number}"}, "data": {"n": "0"}})
            assert created.status_code == 201
            for index in range(100_000):
                if stop.is_set():
                    return
                name = f"w{number}-{index}"
                try:
                    with lock:
                        attempted[0] += 1
                    if http.post(CM, json={"metadata": {"name": name}, "data": {"i": str(index)}}).status_code == 201:
                        with lock:
                            acknowledged.add(name)
                    patched = http.patch(f"{CM}/counter-{number}", json={"data": {"n": str(index + 1)}}, headers=MERGE)
                    if patched.status_code == 200:
                        with lock:
                            last_counter[number] = index + 1
                except httpx.HTTPError:
                    return  # the server is gone

    threads = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # mid-stream: requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    acked = set(acknowledged)
    counters = dict(last_counter)
    assert len(acked) >= 100, f"only {len(acked)} writes were acknowledged before the kill:\n{server.output()}"

    server.start()
    with server.client() as http:
        stored = _names(http)
    missing = sorted(acked - set(stored))
    in_doubt = {name for name in stored if name.startswith("w")} - acked  # committed, but the reply was cut off
    print(
        f"\nSIGKILL during writes: {attempted[0]} creates attempted, {len(acked)} acknowledged, "
        f"{len(acked) - len(missing)} present after restart, {len(missing)} lost, "
        f"{len(in_doubt)} unacknowledged but committed; counters acknowledged {counters}, "
        f"stored { {n: stored[f'counter-{n}']['data']['n'] for n in counters} }"
    )
    assert missing == []
    for number, value in counters.items():
        assert int(stored[f"counter-{number}"]["data"]["n"]) >= value  # the last acknowledged update, or a later one


def _wal_geometry(wal: pathlib.Path) -> tuple[int, int]:
    """(page size, complete frames) of a -wal file (header: 32 bytes; frame: 24-byte header + one page)."""
    header = wal.read_bytes()[:32]
    page_size = int.from_bytes(header[8:12], "big")
    return page_size, (wal.stat().st_size - 32) // (24 + page_size)


def test_a_torn_wal_tail_loses_only_the_torn_commit_and_the_server_serves_the_rest(servers):
    server = servers().start()
    with server.client() as http:
        for index in range(20):
            assert http.post(CM, json={"metadata": {"name": f"c{index:02d}"}, "data": {"i": str(index)}}).status_code == 201
    server.kill()  # no clean shutdown: the commits are still in the WAL, not checkpointed
    wal = server.state_dir / "state.db-wal"
    page_size, frames = _wal_geometry(wal)
    assert frames > 20, f"expected the writes in the WAL, found {frames} frames"
    torn = 32 + (frames - 1) * (24 + page_size) + 24 + page_size // 2  # half of the last frame (the last commit's)
    os.truncate(wal, torn)

    server.start()
    with server.client() as http:
        stored = _names(http)
        survivors = sorted(name for name in stored if name.startswith("c"))
        print(f"\ntorn WAL tail: {frames} frames, cut at byte {torn}; {len(survivors)} of 20 objects served")
        assert survivors == [f"c{index:02d}" for index in range(19)]  # the torn (last) commit is gone, nothing else
        assert http.post(CM, json={"metadata": {"name": "after"}}).status_code == 201
    server.kill()
    server.start()
    with server.client() as http:
        assert "after" in _names(http)


def test_a_corrupt_row_is_quarantined_and_reported_and_the_server_starts(servers):
    server = servers().start()
    with server.client() as http:
        for name in ("keep-a", "broken", "keep-b"):
            assert http.post(CM, json={"metadata": {"name": name}, "data": {"k": name}}).status_code == 201
    server.stop()
    with contextlib.closing(sqlite3.connect(server.state_dir / "state.db")) as db, db:
        changed = db.execute("UPDATE objects SET body='{\"metadata\": {tru' WHERE name='broken'").rowcount
    assert changed == 1

    server.start()
    quarantines = glob.glob(str(server.state_dir / "quarantine-*.jsonl"))
    assert len(quarantines) == 1
    records = [json.loads(line) for line in pathlib.Path(quarantines[0]).read_text().splitlines()]
    assert [(r["namespace"], r["name"], r["body"]) for r in records] == [("default", "broken", '{"metadata": {tru')]
    assert "broken" in server.output() and quarantines[0] in server.output()
    with server.client() as http:
        stored = _names(http)
        assert {"keep-a", "keep-b"} <= set(stored) and "broken" not in stored
        events = http.get("/api/v1/namespaces/default/events").json()["items"]
        reported = [e for e in events if e["reason"] == "StorageQuarantined"]
        assert len(reported) == 1 and quarantines[0] in reported[0]["message"] and reported[0]["type"] == "Warning"
    print(f"\ncorrupt row: 1 row quarantined to {os.path.basename(quarantines[0])}; 2 of 2 readable objects served")

    server.kill()
    server.start()  # the row left the database: nothing new is quarantined
    assert len(glob.glob(str(server.state_dir / "quarantine-*.jsonl"))) == 1


def test_a_database_file_that_is_not_a_database_stops_startup_with_one_clear_line(servers):
    server = servers().start()
    server.kill()
    for suffix in ("-wal", "-shm"):
        (server.state_dir / f"state.db{suffix}").unlink(missing_ok=True)
    (server.state_dir / "state.db").write_bytes(b"overwritten by something else\n" * 200)
    refused = subprocess.run(
        [sys.executable, "-m", "mlkube.local.apiserver", "--state-dir", str(server.state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert str(server.state_dir / "state.db") in refused.stderr and "move it" in refused.stderr
    print(f"\nstate.db overwritten: exit {refused.returncode}: {refused.stderr.strip()}")


def test_a_second_server_on_the_same_state_directory_refuses_at_once_naming_it_and_the_holder(servers):
    first = servers().start()
    kubeconfig = (first.state_dir / "kubeconfig").read_text()
    second = subprocess.run(
        [sys.executable, "-m", "mlkube.local.apiserver", "--state-dir", str(first.state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert str(first.state_dir) in second.stderr and f"pid {first.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert (first.state_dir / "kubeconfig").read_text() == kubeconfig  # the first server's credentials untouched
    with first.client() as http:
        assert http.post(CM, json={"metadata": {"name": "still-mine"}}).status_code == 201
    print(f"\ntwo servers: the second exited {second.returncode}: {second.stderr.strip()}")


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child only: Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))  # soft: the test can lift it

    return apply


def _file_size_limit_works(tmp_path: pathlib.Path) -> str:
    """ "" when a child under RLIMIT_FSIZE gets EFBIG past the limit, else why not."""
    probe = (
        "import errno, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)\n"
        "os.write(fd, b'x' * 4096)  # up to the limit\n"
        "try:\n"
        "    os.write(fd, b'x')\n"
        "except OSError as e:\n"
        "    sys.exit(0 if e.errno == errno.EFBIG else 3)\n"
        "sys.exit(4)"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / "probe")], preexec_fn=_file_size_limit(4096), timeout=30
        )
    except subprocess.SubprocessError as exc:
        return f"RLIMIT_FSIZE cannot be set in a child ({exc})"
    return "" if result.returncode == 0 else f"a write past RLIMIT_FSIZE did not fail with EFBIG (probe exit {result.returncode})"


def test_a_full_disk_fails_the_write_with_5xx_and_loses_nothing_acknowledged(servers, tmp_path):
    limit = 2 * 1024 * 1024
    if why := _file_size_limit_works(tmp_path):
        pytest.skip(f"{why}; a tmpfs cannot be mounted without privileges either")
    server = servers(preexec=_file_size_limit(limit)).start()
    acknowledged, failures = [], []
    with server.client() as http:
        for index in range(40):
            response = http.post(CM, json={"metadata": {"name": f"f{index:02d}"}, "data": {"x": "y" * 200_000}})
            if response.status_code == 201:
                acknowledged.append(f"f{index:02d}")
            else:
                failures.append(response)
                if len(failures) == 3:
                    break
        assert failures, "the file size limit was never reached"
        status = failures[0].json()
        assert 500 <= failures[0].status_code < 600 and status["kind"] == "Status"
        assert "could not be stored" in status["message"] and "free disk space" in status["message"]
        assert "Traceback" not in server.output()
        assert http.get("/healthz").text == "ok"  # still up, still serving reads
        assert set(acknowledged) <= set(_names(http))
        recovered = ""
        with contextlib.suppress(PermissionError):  # prlimit of another process may be refused (e.g. seccomp)
            resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            response = http.post(CM, json={"metadata": {"name": "space-is-back"}, "data": {"x": "y" * 200_000}})
            assert response.status_code == 201, response.text  # the same process writes again once there is room
            acknowledged.append("space-is-back")
            recovered = "; once the limit was lifted the same process stored the next write"
    server.kill()

    server.preexec = None  # space is back
    server.start()
    with server.client() as http:
        stored = _names(http)
        assert http.post(CM, json={"metadata": {"name": "after"}}).status_code == 201
    lost = sorted(set(acknowledged) - set(stored))
    print(
        f"\ndisk full (RLIMIT_FSIZE {limit} bytes): {len(acknowledged)} writes acknowledged, then "
        f"{failures[0].status_code} ({status['reason']}){recovered}; after SIGKILL and restart {len(acknowledged) - len(lost)} present, "
        f"{len(lost)} lost"
    )
    assert lost == []
