"""Serving benchmark: stock KServe vs the mlkube model server, router and shadow, in one run.

Setups, each a real process on loopback, measured with the same load generator (below):
  (a) stock `kserve.ModelServer` + a plain `kserve.Model` that loads the same joblib pipeline and
      predicts (`pandas.DataFrame(instances)` then `pipeline.predict`);
  (b) `python -m mlkube.serving.server` on the same model version, adaptive batching on (the default);
  (b') the same with batching off (`--batching '{"enabled": false}'`): one pipeline call per request;
  (c) `python -m mlkube.serving.router` in front of (b);
  (c') the router in front of (b') (printed for reference, not in RESULT);
  (d) (c) with 100 % shadow mirroring to a second instance of (b);
  (d') as (d) with that shadow instance at nice 19 (printed for reference, not in RESULT).
Each setup: warm-up, then rounds that interleave the setups, each with sequential requests
(concurrency 1: p50/p99 latency) and a run at concurrency 16 (throughput; the model server's,
router's and load generator's CPU time per request; the model server's mean batch).
Figures are medians over the rounds. Both model servers run with the same KServe flags. Every
request is one row: at concurrency 16, batching is what concurrent single-row clients get.

Run: `.venv/bin/python benchmarks/serving.py [--requests 500] [--parallel-requests 3000] [--rounds 5]`. The last line is
`RESULT server_vs_kserve=<(b)/(a) req/s at c16> server_vs_kserve_unbatched=<(b')/(a) req/s at c16>
server_p50_ms=<(b) p50 at c1> server_unbatched_p50_ms=<(b') p50 at c1> kserve_p50_ms=<(a) p50 at c1>
router_added_p50_ms=<(c)-(b) p50 at c1, one request to each in turn, --requests x --rounds times>
router_throughput_ratio=<(c)/(b) req/s at c16>
shadow_p50_ratio=<(d)/(c) p50 at c1, in each round, median over the rounds> router_throughput_ratio_paired=<(c)/(b) req/s at c16, measured back to
back over --paired-requests, median over the rounds>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

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
#
# A load generator in the style of wrk: `concurrency` keep-alive connections, each sending the next
# request when the previous answer is complete, the request bytes built once. On two cores the
# client shares the machine with the processes it measures, so what it costs per request is taken
# from them: aiohttp's client cost about 185 us per request here, half the model server's own
# figure, and made the router's throughput ratio measure where the kernel put three busy
# processes. This one costs a fraction of that (printed as `client CPU us/req`).


class _Exchange(asyncio.Protocol):
    """One keep-alive connection of a run: request, read the whole answer, next request."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buffer = b""
        self.started = 0.0
        self.waiting = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        if self.run.remaining <= 0:
            self.transport.close()
            return
        self.run.remaining -= 1
        self.waiting = True
        self.started = time.perf_counter()
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = _CONTENT_LENGTH.search(self.buffer, 0, end)
        if length is None:
            self.run.fail(f"{self.run.url}: an answer without Content-Length: {self.buffer[:end]!r}")
            return
        size = end + 4 + int(length.group(1))
        if len(self.buffer) < size:
            return
        status, self.buffer = self.buffer[9:12], self.buffer[size:]
        self.waiting = False
        if status != b"200":
            self.run.fail(f"{self.run.url}: HTTP {status.decode(errors='replace')}")
            return
        self.run.latencies.append((time.perf_counter() - self.started) * 1000.0)
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting:
            self.run.fail(f"{self.run.url}: connection closed mid-run ({exc or 'by the server'})")
        self.run.closed()


def _post(parts: urllib.parse.SplitResult, body: bytes) -> bytes:
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class _Run:
    def __init__(self, url: str, body: bytes, requests: int, connections: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname, parts.port
        self.request = _post(parts, body)
        self.requests, self.remaining = requests, requests
        self.latencies: list[float] = []
        self.open = connections
        self.finished = asyncio.get_running_loop().create_future()

    def fail(self, message: str) -> None:
        self.remaining = 0
        if not self.finished.done():
            self.finished.set_exception(RuntimeError(message))

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.finished.done():
            self.finished.set_result(None)


async def measure(url: str, body: bytes, *, requests: int, concurrency: int) -> dict:
    """Latencies and throughput of `requests` POSTs over `concurrency` keep-alive connections."""
    loop = asyncio.get_running_loop()
    run = _Run(url, body, requests, concurrency)
    began = time.perf_counter()
    transports = [(await loop.create_connection(lambda: _Exchange(run), run.host, run.port))[0] for _ in range(concurrency)]
    try:
        await run.finished
    finally:
        for transport in transports:
            transport.close()
    elapsed = time.perf_counter() - began
    latencies = sorted(run.latencies)
    return {
        "rps": requests / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


async def in_turn(urls: list[str], body: bytes, *, requests: int) -> list[float]:
    """p50 latency (ms) of each URL at concurrency 1, sending one request to each in turn, `requests`
    times: all of them see the same moments of the machine, so their differences are not a change
    of load between two runs."""
    callers = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        callers.append((reader, writer, _post(parts, body), url))
    latencies: list[list[float]] = [[] for _ in urls]
    try:
        for _ in range(requests):
            for (reader, writer, request, url), kept in zip(callers, latencies):
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                if length is None or head[9:12] != b"200":
                    raise RuntimeError(f"{url}: expected a 200 with Content-Length, got {head!r}")
                await reader.readexactly(int(length.group(1)))
                kept.append((time.perf_counter() - started) * 1000.0)
    finally:
        for _, writer, _, _ in callers:
            writer.close()
    return [statistics.median(kept) for kept in latencies]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def batched(server: str) -> tuple[float, float]:
    """The model server's count of requests scored in pipeline calls, and of those calls (0, 0 for stock KServe)."""
    async with aiohttp.ClientSession() as session, session.get(f"{server}/metrics") as response:
        text = await response.text()
    found = dict(re.findall(r"^mlkube_predict_batch_requests_(sum|count)\{[^}]*\} (\S+)$", text, re.MULTILINE))
    return float(found.get("sum", 0.0)), float(found.get("count", 0.0))


async def bench_round(url: str, body: bytes, counts: tuple[int, int], server: tuple[str, int], router_pid: int | None) -> dict:
    """One round: sequential latency, then throughput at concurrency 16 with each process's CPU per request
    and the model server's mean batch (requests per pipeline call). `server`: its base URL and pid."""
    server_url, server_pid = server
    sequential_count, parallel_count = counts
    sequential = await measure(url, body, requests=sequential_count, concurrency=1)
    scored_before, calls_before = await batched(server_url)
    router_before = cpu_seconds(router_pid) if router_pid else 0.0
    server_before, client_before = cpu_seconds(server_pid), time.process_time()
    parallel = await measure(url, body, requests=parallel_count, concurrency=16)
    per_request = 1e6 / parallel_count
    scored, calls = await batched(server_url)
    return {
        "p50": sequential["p50"],
        "p99": sequential["p99"],
        "rps1": sequential["rps"],
        "rps16": parallel["rps"],
        "server_us": (cpu_seconds(server_pid) - server_before) * per_request,
        "router_us": (cpu_seconds(router_pid) - router_before) * per_request if router_pid else 0.0,
        "client_us": (time.process_time() - client_before) * per_request,
        "batch": (scored - scored_before) / (calls - calls_before) if calls > calls_before else 0.0,
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


async def main_async(counts: tuple[int, int], rounds_count: int, paired_requests: int) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="mlkube-bench-"))
    instance = write_version(work / "v1")
    body = json.dumps({"instances": [instance]}).encode()
    names = (
        "stock",
        "ours",
        "unbatched",
        "shadow",
        "router",
        "router_unbatched",
        "router_shadow",
        "shadow_niced",
        "router_shadow_niced",
    )
    ports = {name: free_port() for name in names}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    (work / "routes.json").write_text(json.dumps(routes("dep", base["ours"], None)))
    (work / "routes-unbatched.json").write_text(json.dumps(routes("dep", base["unbatched"], None)))
    (work / "routes-shadow.json").write_text(json.dumps(routes("dep", base["ours"], base["shadow"])))
    (work / "routes-shadow-niced.json").write_text(json.dumps(routes("dep", base["ours"], base["shadow_niced"])))
    model_dir = str(work / "v1")
    processes = {
        "stock": start([__file__, "--stock-server", model_dir, str(ports["stock"])]),
        "ours": start(server(model_dir, ports["ours"])),
        "unbatched": start(server(model_dir, ports["unbatched"], "--batching", json.dumps({"enabled": False}))),
        "shadow": start(server(model_dir, ports["shadow"])),
        "router": start(router(work / "routes.json", ports["router"])),
        "router_unbatched": start(router(work / "routes-unbatched.json", ports["router_unbatched"])),
        "router_shadow": start(router(work / "routes-shadow.json", ports["router_shadow"])),
        "shadow_niced": start(server(model_dir, ports["shadow_niced"]), niceness=19),
        "router_shadow_niced": start(router(work / "routes-shadow-niced.json", ports["router_shadow_niced"])),
    }
    pid = {name: process.pid for name, process in processes.items()}
    try:
        for name in names:
            await wait_ready(f"{base[name]}/v2/health/ready", timeout=180)
        # Each setup: the URL called, the model server behind it, and the router in between (if any).
        called = {
            "(a) stock kserve": ("stock", "stock", None),
            "(b) mlkube server": ("ours", "ours", None),
            "(b') batching off": ("unbatched", "unbatched", None),
            "(c) router -> (b)": ("router", "ours", "router"),
            "(d) (c) + 100% shadow": ("router_shadow", "ours", "router_shadow"),
            "(d') shadow at nice 19": ("router_shadow_niced", "ours", "router_shadow_niced"),
            "(c') router -> (b')": ("router_unbatched", "unbatched", "router_unbatched"),
        }
        model = {"stock": "stock", "ours": "bench", "unbatched": "bench"}
        setups = {
            name: (
                f"{base[target]}/v1/models/{model.get(target, 'dep')}:predict",
                (base[server_name], pid[server_name]),
                pid[router_name] if router_name else None,
            )
            for name, (target, server_name, router_name) in called.items()
        }
        for url, *_ in setups.values():
            await measure(url, body, requests=300, concurrency=4)  # warm-up
        # Rounds interleave the setups so that load from elsewhere on the machine hits them alike;
        # each figure is the median over the rounds.
        rounds = {name: [] for name in setups}
        for _ in range(rounds_count):
            for name, (url, behind, router_pid) in setups.items():
                rounds[name].append(await bench_round(url, body, counts, behind, router_pid))
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
        # The router's added latency: (b) and (c) called in turn, one request each, so that a spell
        # of load elsewhere on the machine falls on both (in the rounds it can fall on one setup's
        # turn and not the other's).
        server_p50, router_p50 = await in_turn(
            [setups["(b) mlkube server"][0], setups["(c) router -> (b)"][0]], body, requests=counts[0] * rounds_count
        )
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
    print(f"{'':<24}{'':>9}{'':>9}{'':>10}{'':>11}{'CPU us per request at c16':>27}")
    print(
        f"{'setup':<24}{'p50 ms':>9}{'p99 ms':>9}{'req/s c1':>10}{'req/s c16':>11}{'server':>9}{'router':>9}{'client':>9}{'batch':>7}"
    )
    for name, r in results.items():
        cpu = f"{r['server_us']:>9.0f}{r['router_us']:>9.0f}{r['client_us']:>9.0f}{r['batch']:>7.1f}"
        print(f"{name:<24}{r['p50']:>9.3f}{r['p99']:>9.3f}{r['rps1']:>10.0f}{r['rps16']:>11.0f}{cpu}")
    print("CPU: the primary model server's, the router's and this load generator's (shadow servers excluded).")
    print("batch: the model server's mean requests per pipeline call at c16 (0: stock KServe, or batching off).")
    print("(c') = the router in front of (b'), for reference: there each request is a pipeline call of its own.")
    print("(d') = (d) with the shadow server at nice 19: on a shared 2-core machine the shadow's model CPU competes")
    print("     with the primary's; (d') separates that contention from what the router itself adds.")
    print(f"In turn at c1 (router_added_p50_ms): (b) p50 {server_p50:.3f} ms, (c) p50 {router_p50:.3f} ms.")
    a, b, b_off, c = (
        results[name] for name in ("(a) stock kserve", "(b) mlkube server", "(b') batching off", "(c) router -> (b)")
    )
    # (d) runs right after (c) in each round: their ratio is taken round by round, then the median.
    shadow_ratio = statistics.median(
        d["p50"] / c["p50"] for c, d in zip(rounds["(c) router -> (b)"], rounds["(d) (c) + 100% shadow"], strict=True)
    )
    print(
        f"RESULT server_vs_kserve={b['rps16'] / a['rps16']:.2f} server_vs_kserve_unbatched={b_off['rps16'] / a['rps16']:.2f} "
        f"server_p50_ms={b['p50']:.3f} server_unbatched_p50_ms={b_off['p50']:.3f} kserve_p50_ms={a['p50']:.3f} "
        f"router_added_p50_ms={router_p50 - server_p50:.3f} router_throughput_ratio={c['rps16'] / b['rps16']:.2f} "
        f"shadow_p50_ratio={shadow_ratio:.2f} router_throughput_ratio_paired={statistics.median(paired):.2f}"
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stock-server":
        model_dir, port = sys.argv[2], int(sys.argv[3])
        sys.argv = sys.argv[:1]  # kserve parses sys.argv when it is imported
        run_stock_server(model_dir, port)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="sequential requests (concurrency 1) per setup and round")
    parser.add_argument("--parallel-requests", type=int, default=3000, help="requests at concurrency 16 per setup and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; figures are medians over them")
    parser.add_argument(
        "--paired-requests", type=int, default=5000, help="requests per run of the paired router ratio (c16, (b) then (c))"
    )
    args = parser.parse_args()
    asyncio.run(main_async((args.requests, args.parallel_requests), args.rounds, args.paired_requests))


if __name__ == "__main__":
    main()
