"""Operator reconcile throughput and latency on the embedded control plane (issue 6).

Workload: an embedded API server (no process runtime, so Jobs are created but no pods start),
the operator as its own process (`mlkube operator`), one MLProject, then N TrainingJobs applied
at a steady rate. Measured: latency from each apply to its Job's ADDED watch event (p50, p99),
the time until every Job exists and every TrainingJob has its status written, and the
operator's peak RSS (sampled every 100 ms).

    .venv/bin/python benchmarks/reconcile.py [--count 500] [--rate 50]

Ends with one line: RESULT apply_to_job_p50_ms=... apply_to_job_p99_ms=... all_reconciled_s=... operator_rss_mb=...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import aiohttp
import psutil

from mlkube.local import up
from mlkube.local.apiserver import server

NAMESPACE = "default"
GROUP = "/apis/mlkube.io/v1alpha1/namespaces/default"


def project() -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "MLProject",
        "metadata": {"name": "bench"},
        "spec": {
            "goal": {"description": "benchmark", "type": "Process"},
            "problem": {"task": "classification", "target": "y", "primaryMetric": "f1"},
            "data": {"uri": "file:///tmp/bench.csv"},
            "storage": {"uri": "file:///tmp/bench-models"},
        },
    }


def trainingjob(i: int) -> dict:
    return {
        "apiVersion": "mlkube.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"tj-{i:04d}"},
        "spec": {"projectRef": "bench", "tuning": {"maxTrials": 1}},
    }


async def run(api: server.ServerThread, count: int, rate: float) -> dict[str, float]:
    context = ssl.create_default_context(cafile=api.ca_path)
    headers = {"Authorization": f"Bearer {api.token}"}
    applied: dict[str, float] = {}
    job_seen: dict[str, float] = {}
    status_seen: set[str] = set()
    async with aiohttp.ClientSession(api.url, headers=headers, connector=aiohttp.TCPConnector(ssl=context, limit=16)) as http:

        async def watch(path: str, on_event) -> None:
            async with http.get(
                path, params={"watch": "true", "resourceVersion": "0"}, timeout=aiohttp.ClientTimeout(total=None)
            ) as response:
                async for line in response.content:
                    on_event(json.loads(line), time.perf_counter())

        def job_event(event: dict, at: float) -> None:
            name = event["object"]["metadata"]["name"].removesuffix("-train")
            job_seen.setdefault(name, at)

        def tj_event(event: dict, at: float) -> None:
            if (event["object"].get("status") or {}).get("jobName"):
                status_seen.add(event["object"]["metadata"]["name"])

        watchers = [
            asyncio.create_task(watch("/apis/batch/v1/namespaces/default/jobs", job_event)),
            asyncio.create_task(watch(f"{GROUP}/trainingjobs", tj_event)),
        ]
        async with http.post(f"{GROUP}/mlprojects", json=project()) as response:
            assert response.status == 201, await response.text()
        await asyncio.sleep(2)  # the operator has seen the project
        start = time.perf_counter()
        for i in range(count):
            body = trainingjob(i)
            applied[body["metadata"]["name"]] = time.perf_counter()
            async with http.post(f"{GROUP}/trainingjobs", json=body) as response:
                assert response.status == 201, await response.text()
            await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
        deadline = time.perf_counter() + 120
        while (len(job_seen) < count or len(status_seen) < count) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        for task in watchers:
            task.cancel()
    latencies = sorted((job_seen[n] - t) * 1000 for n, t in applied.items() if n in job_seen)
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "all_reconciled_s": done - start,
        "jobs": len(job_seen),
        "statuses": len(status_seen),
    }


def sample_rss(process: psutil.Process, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss / 2**20)
        except psutil.Error:
            return
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="TrainingJobs applied per second (issue 20's burst: 500 at 50/s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlkube-bench-") as tmp:
        state = pathlib.Path(tmp)
        api = server.run_in_thread(str(state), port=0)
        server.install_crds(api, paths=[str(p) for p in up._crd_files(state)])
        operator = subprocess.Popen(
            [sys.executable, "-m", "mlkube.cli", "operator", "--kubeconfig", api.kubeconfig_path],
            stdout=open(state / "operator.log", "w"),  # noqa: SIM115 (the child's)
            stderr=subprocess.STDOUT,
        )
        peak, stop = [0.0], threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(psutil.Process(operator.pid), stop, peak), daemon=True)
        sampler.start()
        time.sleep(3)
        try:
            result = asyncio.run(run(api, args.count, args.rate))
        finally:
            stop.set()
            operator.send_signal(signal.SIGINT)
            operator.wait(timeout=30)
            api.stop()
    print(f"{args.count} TrainingJobs at {args.rate:g}/s: {result['jobs']} Jobs created, {result['statuses']} statuses written")
    print(f"apply -> Job created: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms (target p50 < 200 ms)")
    print(
        f"all reconciled in {result['all_reconciled_s']:.1f} s (target < 60 s); operator peak RSS {peak[0]:.0f} MB (target < 200 MB)"
    )
    print(
        f"RESULT apply_to_job_p50_ms={result['p50']:.1f} apply_to_job_p99_ms={result['p99']:.1f} "
        f"all_reconciled_s={result['all_reconciled_s']:.1f} operator_rss_mb={peak[0]:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
