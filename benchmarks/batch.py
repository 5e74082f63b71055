"""Batch scoring benchmark: one BatchPrediction shard against in-process predict and HTTP, in one run.

The model: a penguins classifier (imputation, scaling, one-hot encoding, logistic regression) written
as a model version with the trainer's artifact writer. The data: real penguin rows (the 344 of the
palmerpenguins package) replicated to ``--rows`` rows (default 1,000,000) with an id column, as one
CSV file. Three ways to score them:

  (a) bare in-process ``pipeline.predict`` on the rows already in memory (a DataFrame of the
      features, read before the clock starts);
  (b) our BatchPrediction shard end to end: ``python -m mlkube.batch`` as its own process, as a
      shard pod runs it (one shard), reading the CSV, validating every row with the model server's
      rules, predicting with the server's postprocessing, writing the Parquet part (id, prediction,
      probabilities) and committing the manifest. Its rows/s are over the shard's ``score`` time
      (list, read, validate, score, write, upload: what it reports in ``seconds``); the process's
      whole wall time (interpreter, imports, verifying and loading the version) is printed too;
  (c) the same rows sent one per request to the model server (``python -m mlkube.serving.server``)
      by 8 concurrent clients on keep-alive connections, ``--http-requests`` of them (default 3,000:
      at about a thousand requests a second, the million rows would take a quarter of an hour).

Peak memory is the shard process's own high-water mark of resident memory (``VmHWM``, which it
reports as ``peakMemoryMiB``), interpreter, imports and model included.
Targets (issue 18): (b) at least 0.5x the rows/s of (a), at least 30x those of (c), and a shard
under 500 MiB on a 1,000,000-row input.

Run: ``.venv/bin/python benchmarks/batch.py [--rows 1000000] [--http-requests 3000]``. The last line
is ``RESULT batch_vs_inprocess=<(b)/(a)> batch_vs_http=<(b)/(c)> peak_rss_mb=<(b)'s peak>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import aiohttp
import numpy as np
import palmerpenguins
import pandas as pd

PYTHON = sys.executable
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
NUMERIC = FEATURES[1:5]
CONCURRENCY = 8


def write_version(dest: pathlib.Path) -> str:
    """The penguins classifier as a model version; its digest."""
    from sklearn import compose, impute, linear_model, pipeline, preprocessing

    from mlkube.ml import artifacts

    frame = palmerpenguins.load_penguins().dropna(subset=["species"])
    X, y = frame[FEATURES], frame["species"]
    numeric = pipeline.make_pipeline(impute.SimpleImputer(), preprocessing.StandardScaler())
    categorical = pipeline.make_pipeline(
        impute.SimpleImputer(strategy="most_frequent"), preprocessing.OneHotEncoder(handle_unknown="ignore")
    )
    prep = compose.ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, ["island", "sex"])])
    model = pipeline.Pipeline([("prep", prep), ("clf", linear_model.LogisticRegression(max_iter=1000))]).fit(X, y)
    schema = [{"name": "island", "type": "categorical", "categories": sorted(X["island"].unique()), "nullable": False}]
    schema += [{"name": c, "type": "numeric", "nullable": True} for c in NUMERIC]
    schema += [{"name": "sex", "type": "categorical", "categories": ["female", "male"], "nullable": True}]
    card = {
        "schemaVersion": 1,
        "problem": {"task": "classification", "target": "species"},
        "featureSchema": schema,
        "classes": list(model.classes_),
    }
    reference = X.iloc[:100].assign(__prediction__=model.predict(X.iloc[:100]), __target__=y.iloc[:100].to_numpy())
    return artifacts.write(dest.as_uri(), pipeline=model, card=card, metrics={}, reference=reference).digest


def write_rows(path: pathlib.Path, rows: int) -> pd.DataFrame:
    """``rows`` real penguins with an id, as one CSV file; the frame."""
    real = palmerpenguins.load_penguins()[FEATURES]
    frame = real.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    frame.insert(0, "penguin_id", np.arange(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


# -- (a) --------------------------------------------------------------------------------------


def in_process(version: pathlib.Path, digest: str, csv: pathlib.Path) -> float:
    """Seconds of ``pipeline.predict`` on the rows in memory."""
    from mlkube.ml import artifacts

    pipeline = artifacts.load(version, expected_digest=digest).pipeline
    X = pd.read_csv(csv)[FEATURES]
    pipeline.predict(X.iloc[:1000])  # warm: the first call pays sklearn's lazy imports
    started = time.perf_counter()
    pipeline.predict(X)
    return time.perf_counter() - started


# -- (b) --------------------------------------------------------------------------------------


def shard(
    version: pathlib.Path, digest: str, csv: pathlib.Path, out: pathlib.Path, result: pathlib.Path
) -> tuple[dict, float, float]:
    """Run one shard as its own process: its result, its wall time and its peak resident memory in MiB."""
    request = {
        "run": {"name": "bench", "namespace": "bench", "uid": "0123abcd-0000", "startedAt": "2026-12-05T00:00:00Z"},
        "model": {"version": 1, "uri": version.as_uri()},
        "input": {"uri": csv.as_uri()},
        "output": {"uri": f"{out.as_uri()}/", "passthrough": ["penguin_id"], "include": ["prediction", "probabilities"]},
        "shards": 1,
    }
    env = {
        **os.environ,
        "MLKUBE_SCORING_REQUEST": json.dumps(request),
        "MLKUBE_MODEL_DIGEST": digest,
        "JOB_COMPLETION_INDEX": "0",
    }
    started = time.perf_counter()
    code = subprocess.run([PYTHON, "-m", "mlkube.batch", "--result", str(result)], env=env, stdout=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - started
    answer = json.loads(result.read_text())
    if code != 0 or not answer.get("ok"):
        raise RuntimeError(f"the shard failed: {answer}")
    # The shard's own high-water mark since its exec (VmHWM): a child's getrusage would also count
    # the pages of this process, which holds the million rows, at the moment it forked.
    return answer, wall, answer["peakMemoryMiB"]


# -- (c) --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def over_http(version: pathlib.Path, digest: str, rows: pd.DataFrame, requests: int) -> float:
    """Rows per second of one-row requests to the model server serving the version."""
    port = free_port()
    env = {**os.environ, "MLKUBE_BIND_HOST": "127.0.0.1", "MLKUBE_MODEL_DIGEST": digest}
    command = [
        PYTHON,
        "-m",
        "mlkube.serving.server",
        "--model_name",
        "penguins",
        "--model_dir",
        str(version),
        "--http_port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bodies = [
        json.dumps({"instances": [{k: (None if pd.isna(v) else v) for k, v in row.items()}]}).encode()
        for row in rows[FEATURES].iloc[:requests].to_dict("records")
    ]
    try:
        return asyncio.run(_one_row_requests(f"http://127.0.0.1:{port}", bodies))
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _one_row_requests(url: str, bodies: list[bytes]) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        await _ready(session, f"{url}/v2/health/ready")
        predict = f"{url}/v1/models/penguins:predict"
        headers = {"content-type": "application/json"}
        queue = list(reversed(bodies))

        async def client() -> None:
            while queue:
                async with session.post(predict, data=queue.pop(), headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"the model server answered {response.status}")

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))  # warm the connections
        queue = list(reversed(bodies))
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return len(bodies) / (time.perf_counter() - started)


async def _ready(session: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--http-requests", type=int, default=3_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlkube-bench-batch-") as scratch:
        work = pathlib.Path(scratch)
        digest = write_version(work / "v1")
        rows = write_rows(work / "in" / "penguins.csv", args.rows)
        print(f"{args.rows:,} rows, {(work / 'in' / 'penguins.csv').stat().st_size / 2**20:.0f} MiB of CSV", flush=True)

        inprocess = args.rows / in_process(work / "v1", digest, work / "in" / "penguins.csv")
        print(f"(a) in-process pipeline.predict: {inprocess:,.0f} rows/s", flush=True)

        answer, wall, peak = shard(work / "v1", digest, work / "in" / "penguins.csv", work / "out", work / "result.json")
        if answer["totals"]["rowsScored"] != args.rows:
            raise RuntimeError(f"the shard scored {answer['totals']['rowsScored']} of {args.rows} rows")
        seconds = answer["seconds"]
        batch = args.rows / seconds["score"]
        print(
            f"(b) BatchPrediction shard: {batch:,.0f} rows/s over its score time ({seconds['score']:.2f} s: read, validate, "
            f"score, write); whole process {wall:.2f} s ({args.rows / wall:,.0f} rows/s, {args.rows / wall / inprocess:.2f}x (a); "
            f"version verified and loaded in {seconds['load']:.2f} s); peak RSS {peak:.0f} MiB",
            flush=True,
        )

        http = over_http(work / "v1", digest, rows, args.http_requests)
        print(f"(c) model server, one row per request, {CONCURRENCY} concurrent clients: {http:,.0f} rows/s", flush=True)

    print(
        f"(b)/(a) {batch / inprocess:.2f}x (target 0.5x); (b)/(c) {batch / http:.0f}x (target 30x); peak {peak:.0f} MiB (target 500)"
    )
    print(f"RESULT batch_vs_inprocess={batch / inprocess:.2f} batch_vs_http={batch / http:.1f} peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
