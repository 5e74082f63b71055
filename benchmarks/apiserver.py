"""Embedded API server vs. kmock's KubernetesEmulator: durable write throughput with a watcher attached, and watch latency.

Each server runs in its own process; this process is the client (aiohttp, keep-alive, a few
concurrent workers). Two phases per server, same workload for both:

1. throughput: WORKERS workers create ConfigMaps and then merge-patch each once, while one watch
   stream is open; writes/s = acknowledged writes / wall time. Ours acknowledges a write only once
   it is fsynced (SQLite WAL + group commit: writes that arrive together share one fdatasync), so
   every write counted here survives a power loss; kmock keeps everything in memory.
2. latency: one write at a time; latency = time from sending the write to receiving its watch event
   (ours also waits for the fsync before sending the event).

The state directory is created under --state-parent (default: the current directory), because
fsync is free on a tmpfs such as many systems' /tmp; its filesystem is printed. Prints both
servers' figures, our fsyncs and commits per fsync, the ratio, and ends with one `RESULT ...` line.
Run: `.venv/bin/python benchmarks/apiserver.py [--writes N] [--workers N] [--state-parent DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import tempfile
import time
from typing import Any

import aiohttp

PATH = "/api/v1/namespaces/default/configmaps"


def _run_ours(state_dir: str, ready: Any, done: Any) -> None:
    from mlkube.local.apiserver import server

    async def main() -> None:
        api = server.APIServer(state_dir)
        await api.start()
        commits = api.store._commits  # the benchmark reads the group-commit counters
        before = (commits.syncs, commits.covered)
        ready.put({"url": api.url, "token": api.token, "ca": api.ca_path})
        await asyncio.get_running_loop().run_in_executor(None, done.get)
        ready.put({"fsyncs": commits.syncs - before[0], "commits": commits.covered - before[1]})
        await api.stop()

    asyncio.run(main())


def _run_kmock(ready: Any, done: Any) -> None:
    import kmock

    async def main() -> None:
        emulator = kmock.KubernetesEmulator()
        emulator.resources["v1/configmaps"] = {}
        async with kmock.Server(emulator) as running:
            ready.put({"url": str(running.url).rstrip("/"), "token": "", "ca": ""})
            await asyncio.get_running_loop().run_in_executor(None, done.get)
            ready.put({})

    asyncio.run(main())


class Watcher:
    """One watch stream; records when each (name, seq) event arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.events = 0
        self.opened = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        async with session.get(url + PATH, params={"watch": "true"}, timeout=aiohttp.ClientTimeout(total=None)) as r:
            self.opened.set()
            async for line in r.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                key = ((obj.get("metadata") or {}).get("name", ""), (obj.get("data") or {}).get("seq", ""))
                self.arrivals[key] = time.perf_counter()
                self.events += 1


async def _write(session: aiohttp.ClientSession, url: str, name: str, seq: str, *, create: bool) -> None:
    if create:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"seq": seq}}
        async with session.post(url + PATH, json=body) as response:
            assert response.status in (200, 201), await response.text()
            await response.read()
    else:
        async with session.patch(
            f"{url}{PATH}/{name}",
            data=json.dumps({"data": {"seq": seq}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            assert response.status == 200, await response.text()
            await response.read()


async def measure(target: dict[str, str], *, writes: int, workers: int, latency_writes: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {target['token']}"} if target["token"] else {}
    context = ssl.create_default_context(cafile=target["ca"]) if target["ca"] else None
    connector = aiohttp.TCPConnector(ssl=context if context else False, limit=workers + 2)
    url = target["url"]
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        watcher = Watcher()
        watch_task = asyncio.create_task(watcher.run(session, url))
        await watcher.opened.wait()

        creates = writes // 2
        queue: asyncio.Queue = asyncio.Queue()
        for index in range(creates):
            queue.put_nowait((f"bench-{index}", "c", True))
        for index in range(writes - creates):
            queue.put_nowait((f"bench-{index % creates}", f"p{index}", False))

        async def worker() -> None:
            while not queue.empty():
                name, seq, create = queue.get_nowait()
                await _write(session, url, name, seq, create=create)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))  # creates first: the queue is FIFO
        elapsed = time.perf_counter() - started

        latencies = []
        for index in range(latency_writes):
            seq = f"l{index}"
            sent = time.perf_counter()
            await _write(session, url, "bench-0", seq, create=False)
            while ("bench-0", seq) not in watcher.arrivals:
                await asyncio.sleep(0)
            latencies.append((watcher.arrivals[("bench-0", seq)] - sent) * 1000)
        watch_task.cancel()
        await asyncio.gather(watch_task, return_exceptions=True)
    latencies.sort()
    return {
        "writes_per_s": writes / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "events": watcher.events,
    }


def _start(target: str, state_dir: str) -> tuple[multiprocessing.Process, dict[str, str], Any, Any]:
    context = multiprocessing.get_context("spawn")
    ready, done = context.Queue(), context.Queue()
    process = context.Process(
        target=_run_ours if target == "ours" else _run_kmock,
        args=(state_dir, ready, done) if target == "ours" else (ready, done),
        daemon=True,
    )
    process.start()
    return process, ready.get(timeout=60), ready, done


def _filesystem(path: str) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts; "unknown" elsewhere)."""
    path, best, kind = os.path.realpath(path), "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, point, fstype = line.split()[:3]
                if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, fstype
    except OSError:
        pass
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-writes", type=int, default=200)
    parser.add_argument("--state-parent", default=".", help="where the state directory is created (a real disk, not tmpfs)")
    arguments = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-", dir=arguments.state_parent) as state_dir:
        print(f"state directory on {_filesystem(state_dir)} ({state_dir})", flush=True)
        for target in ("ours", "kmock"):
            process, info, ready, done = _start(target, state_dir)
            try:
                results[target] = asyncio.run(
                    measure(info, writes=arguments.writes, workers=arguments.workers, latency_writes=arguments.latency_writes)
                )
                done.put("stop")
                results[target].update(ready.get(timeout=30))
            finally:
                process.join(timeout=10)
                if process.is_alive():
                    process.terminate()
                    process.join(timeout=10)
            figures = results[target]
            print(
                f"{target:6s} writes/s={figures['writes_per_s']:8.1f}  watch p50={figures['p50_ms']:.2f} ms  "
                f"p99={figures['p99_ms']:.2f} ms  events seen={figures['events']}",
                flush=True,
            )
    ours, kmock = results["ours"], results["kmock"]
    ratio = ours["writes_per_s"] / kmock["writes_per_s"]
    per_sync = ours["commits"] / max(1, ours["fsyncs"])
    print(f"ours: {ours['commits']} commits made durable by {ours['fsyncs']} fsyncs ({per_sync:.1f} commits per fsync)")
    print(f"ours/kmock write throughput: {ratio:.2f}x (ours fsyncs every write before acknowledging it, and serves TLS)")
    print(
        f"RESULT writes_per_s={ours['writes_per_s']:.0f} vs_kmock={ratio:.2f} durable=fsync "
        f"commits_per_fsync={per_sync:.1f} watch_p50_ms={ours['p50_ms']:.2f} watch_p99_ms={ours['p99_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
