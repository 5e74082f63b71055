"""Serving benchmark: stock KServe vs the mlkube model server, router and shadow, in one run.

Setups, each a real process on loopback, measured with the same bounded client:
  (a) stock `kserve.ModelServer` + a plain `kserve.Model` that loads the same joblib pipeline and
      predicts (`pandas.DataFrame(instances)` then `pipeline.predict`);
  (b) `python -m mlkube.serving.server` on the same model version, adaptive batching on (the default);
  (b') the same with batching off (`--batching '{"enabled": false}'`): one pipeline call per request;
  (c) `python -m mlkube.serving.router` in front of (b);
  (d) (c) with 100 % shadow mirroring to a second instance of (b);
  (d') as (d) with that shadow instance at nice 19 (printed for reference, not in RESULT).
Each setup: warm-up, then rounds that interleave the setups, each with sequential requests
(concurrency 1: p50/p99 latency) and a run at concurrency 16 (throughput, and the server and
router processes' CPU time per request, which load elsewhere on the machine barely moves).
Figures are medians over the rounds. Both model servers run with the same KServe flags. Every
request is one row: at concurrency 16, batching is what concurrent single-row clients get.

Run: `.venv/bin/python benchmarks/serving.py [--requests 500] [--rounds 5]`. The last line is
`RESULT server_vs_kserve=<(b)/(a) req/s at c16> server_vs_kserve_unbatched=<(b')/(a) req/s at c16>
server_p50_ms=<(b) p50 at c1> server_unbatched_p50_ms=<(b') p50 at c1> kserve_p50_ms=<(a) p50 at c1>
router_added_p50_ms=<(c)-(b) p50 at c1> router_throughput_ratio=<(c)/(b) req/s at c16>
shadow_p50_ratio=<(d)/(c) p50 at c1> router_throughput_ratio_paired=<(c)/(b) req/s at c16, measured back to
back over --paired-requests, median over the rounds>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp

PYTHON = sys.executable


# -- (a) the competitor: a plain kserve.Model, started as `serving.py --stock-server` -----------


def run_stock_server(model_dir: str, port: int) -> None:
    import joblib
    import kserve
    import pandas as pd

    class PlainModel(kserve.Model):
        def load(self) -> bool:
            self.pipeline = joblib.load(pathlib.Path(model_dir) / "model.joblib")
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            frame = pd.DataFrame(payload["instances"])
            return {"predictions": self.pipeline.predict(frame).tolist()}

    model = PlainModel("stock")
    model.load()
    kserve.ModelServer(http_port=port, enable_grpc=False).start([model])


# -- the model version -------------------------------------------------------------------------


def write_version(dest: pathlib.Path) -> dict:
    """Logistic regression on the 30 breast-cancer features; returns one request instance."""
    from sklearn import datasets, linear_model, pipeline, preprocessing

    from mlkube.ml import artifacts

    data = datasets.load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    model = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=2000))
    model.fit(frame, data.target)
    reference = frame.iloc[:200].copy()
    reference["__prediction__"] = model.predict(frame.iloc[:200])
    reference["__target__"] = data.target.iloc[:200].to_numpy()
    card = {
        "schemaVersion": 1,
        "problem": {"task": "classification", "target": "target", "positiveClass": 1},
        "algorithm": "logistic_regression",
        "featureSchema": [{"name": c, "type": "numeric", "dtype": "float64", "nullable": False} for c in frame.columns],
        "classes": [0, 1],
    }
    artifacts.write(dest.as_uri(), pipeline=model, card=card, metrics={}, reference=reference)
    return {k: float(v) for k, v in frame.iloc[0].items()}


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], *, niceness: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLKUBE_BIND_HOST": "127.0.0.1"},
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )


async def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout:.0f}s")


# -- the client --------------------------------------------------------------------------------


async def measure(url: str, body: bytes, *, requests: int, concurrency: int) -> dict:
    """Latencies and throughput of `requests` POSTs with `concurrency` workers on keep-alive."""
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                latencies.append((time.perf_counter() - started) * 1000.0)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_round(url: str, body: bytes, requests: int, pids: list[int]) -> dict:
    """One round: sequential latency, then throughput at concurrency 16 with its CPU cost."""
    sequential = await measure(url, body, requests=requests, concurrency=1)
    before = sum(cpu_seconds(pid) for pid in pids)
    parallel = await measure(url, body, requests=requests * 2, concurrency=16)
    cpu_us = (sum(cpu_seconds(pid) for pid in pids) - before) / (requests * 2) * 1e6
    return {
        "p50": sequential["p50"],
        "p99": sequential["p99"],
        "rps1": sequential["rps"],
        "rps16": parallel["rps"],
        "cpu": cpu_us,
    }


def routes(deployment: str, primary: str, shadow: str | None) -> dict:
    backends = {"1": {"url": primary, "model": "bench"}}
    if shadow:
        backends["2"] = {"url": shadow, "model": "bench"}
    return {
        "deployment": deployment,
        "namespace": "bench",
        "project": "bench",
        "generation": 1,
        "backends": backends,
        "split": [{"version": 1, "weight": 100, "role": "stable"}],
        "shadow": {"version": 2, "percent": 100} if shadow else None,
        "capture": {"enabled": False},
    }


def server(model_dir: str, port: int, *extra: str) -> list[str]:
    return ["-m", "mlkube.serving.server", "--model_name", "bench", "--model_dir", model_dir, "--http_port", str(port), *extra]


def router(routes: pathlib.Path, port: int) -> list[str]:
    return ["-m", "mlkube.serving.router", "--routes-file", str(routes), "--port", str(port)]


async def main_async(requests: int, rounds_count: int, paired_requests: int) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="mlkube-bench-"))
    instance = write_version(work / "v1")
    body = json.dumps({"instances": [instance]}).encode()
    names = ("stock", "ours", "unbatched", "shadow", "router", "router_shadow", "shadow_niced", "router_shadow_niced")
    ports = {name: free_port() for name in names}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    (work / "routes.json").write_text(json.dumps(routes("dep", base["ours"], None)))
    (work / "routes-shadow.json").write_text(json.dumps(routes("dep", base["ours"], base["shadow"])))
    (work / "routes-shadow-niced.json").write_text(json.dumps(routes("dep", base["ours"], base["shadow_niced"])))
    model_dir = str(work / "v1")
    processes = {
        "stock": start([__file__, "--stock-server", model_dir, str(ports["stock"])]),
        "ours": start(server(model_dir, ports["ours"])),
        "unbatched": start(server(model_dir, ports["unbatched"], "--batching", json.dumps({"enabled": False}))),
        "shadow": start(server(model_dir, ports["shadow"])),
        "router": start(router(work / "routes.json", ports["router"])),
        "router_shadow": start(router(work / "routes-shadow.json", ports["router_shadow"])),
        "shadow_niced": start(server(model_dir, ports["shadow_niced"]), niceness=19),
        "router_shadow_niced": start(router(work / "routes-shadow-niced.json", ports["router_shadow_niced"])),
    }
    pid = {name: process.pid for name, process in processes.items()}
    try:
        for name in names:
            await wait_ready(f"{base[name]}/v2/health/ready", timeout=180)
        setups = {
            "(a) stock kserve": (f"{base['stock']}/v1/models/stock:predict", [pid["stock"]]),
            "(b) mlkube server": (f"{base['ours']}/v1/models/bench:predict", [pid["ours"]]),
            "(b') batching off": (f"{base['unbatched']}/v1/models/bench:predict", [pid["unbatched"]]),
            "(c) router -> (b)": (f"{base['router']}/v1/models/dep:predict", [pid["router"], pid["ours"]]),
            "(d) (c) + 100% shadow": (f"{base['router_shadow']}/v1/models/dep:predict", [pid["router_shadow"], pid["ours"]]),
            "(d') shadow at nice 19": (
                f"{base['router_shadow_niced']}/v1/models/dep:predict",
                [pid["router_shadow_niced"], pid["ours"]],
            ),
        }
        for url, _ in setups.values():
            await measure(url, body, requests=300, concurrency=4)  # warm-up
        # Rounds interleave the setups so that load from elsewhere on the machine hits them alike;
        # each figure is the median over the rounds.
        rounds = {name: [] for name in setups}
        for _ in range(rounds_count):
            for name, (url, pids) in setups.items():
                rounds[name].append(await bench_round(url, body, requests, pids))
        results = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()}
        # The router's throughput ratio once more, paired and steady: (b) and (c) back to back (in
        # turn first), each over `paired_requests` at concurrency 16, so that both see the same
        # machine and the start of a run (new connections, a process idle for the other setups'
        # turns) weighs less.
        paired = []
        for turn in range(rounds_count):
            pair = [setups["(b) mlkube server"][0], setups["(c) router -> (b)"][0]]
            rates = {}
            for url in pair if turn % 2 == 0 else reversed(pair):
                rates[url] = (await measure(url, body, requests=paired_requests, concurrency=16))["rps"]
            paired.append(rates[pair[1]] / rates[pair[0]])
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
    print(f"{'setup':<24}{'p50 ms':>9}{'p99 ms':>9}{'req/s c1':>10}{'req/s c16':>11}{'CPU us/req':>12}")
    for name, r in results.items():
        print(f"{name:<24}{r['p50']:>9.3f}{r['p99']:>9.3f}{r['rps1']:>10.0f}{r['rps16']:>11.0f}{r['cpu']:>12.0f}")
    print("CPU us/req: model server (+ router) CPU per request at c16, shadow servers excluded.")
    print("(d') = (d) with the shadow server at nice 19: on a shared 2-core machine the shadow's model CPU competes")
    print("     with the primary's; (d') separates that contention from what the router itself adds.")
    a, b, b_off, c, d, _ = results.values()
    print(
        f"RESULT server_vs_kserve={b['rps16'] / a['rps16']:.2f} server_vs_kserve_unbatched={b_off['rps16'] / a['rps16']:.2f} "
        f"server_p50_ms={b['p50']:.3f} server_unbatched_p50_ms={b_off['p50']:.3f} kserve_p50_ms={a['p50']:.3f} "
        f"router_added_p50_ms={c['p50'] - b['p50']:.3f} router_throughput_ratio={c['rps16'] / b['rps16']:.2f} "
        f"shadow_p50_ratio={d['p50'] / c['p50']:.2f} router_throughput_ratio_paired={statistics.median(paired):.2f}"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stock-server":
        model_dir, port = sys.argv[2], int(sys.argv[3])
        sys.argv = sys.argv[:1]  # kserve parses sys.argv when it is imported
        run_stock_server(model_dir, port)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="sequential requests per setup and round (c16: twice)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; figures are medians over them")
    parser.add_argument(
        "--paired-requests", type=int, default=5000, help="requests per run of the paired router ratio (c16, (b) then (c))"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.requests, args.rounds, args.paired_requests))


if __name__ == "__main__":
    main()
