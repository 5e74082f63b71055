"""The closed-loop scenario on Palmer penguins: client traffic, a sensor recalibration, and an alert receiver.

Used by ``mlkube demo`` and by the drift integration tests, which play the world around a
ModelDeployment: field stations sending measurements (:func:`stations`), a bill caliper that
is recalibrated to centimetres (:func:`recalibrated`), experts confirming species (ground
truth), and an Alertmanager (:class:`AlertReceiver`). Everything goes through real HTTP to the
router at the ModelDeployment's ``status.url``.

Must not: talk to the Kubernetes API (the callers do) or download anything (the data ships in
the ``palmerpenguins`` package).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.server
import json
import threading
from typing import Any

import httpx
import numpy as np
import pandas as pd

TARGET = "species"
FEATURES = ("island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex")
RECALIBRATED = ("bill_length_mm", "bill_depth_mm")
# Ground truth follows every few answers, so labels never lag far behind the captured requests.
FEEDBACK_BATCH = 10
# Measurement noise of a field station (per numeric feature, in the feature's unit).
NOISE = {"bill_length_mm": 0.3, "bill_depth_mm": 0.15, "flipper_length_mm": 1.0, "body_mass_g": 40.0}


def penguins() -> pd.DataFrame:
    """The Palmer penguins table (344 rows), as the ``palmerpenguins`` package ships it."""
    import palmerpenguins

    return palmerpenguins.load_penguins()


def stations(table: pd.DataFrame, count: int, *, seed: int) -> pd.DataFrame:
    """``count`` observations drawn from ``table`` with measurement noise: the in-distribution traffic."""
    rng = np.random.default_rng(seed)
    # Rows with a missing measurement stay, as in the data the versions were trained on: traffic
    # without them would differ from every version's reference and read as drift.
    rows = table.dropna(subset=[TARGET]).sample(count, replace=True, random_state=seed).reset_index(drop=True)
    for column, scale in NOISE.items():
        rows[column] = (rows[column] + rng.normal(0.0, scale, count)).round(1)
    return rows


def recalibrated(rows: pd.DataFrame) -> pd.DataFrame:
    """The same observations after the bill caliper was recalibrated to report centimetres.

    The bill features are the ones that separate Adelie from Chinstrap, so a model trained on
    millimetres confuses species; a model retrained on labeled recalibrated traffic learns both
    scales (they do not overlap) and recovers.
    """
    shifted = rows.copy()
    for column in RECALIBRATED:
        shifted[column] = (shifted[column] / 10).round(2)
    return shifted


@dataclasses.dataclass(frozen=True)
class Answer:
    request_id: str
    version: int
    prediction: Any
    truth: Any


def predict(url: str, deployment: str, rows: pd.DataFrame, *, feedback: bool = False, parallel: int = 4) -> list[Answer]:
    """One V1 predict call per row through the router, ``parallel`` at a time, answers in row order.

    With ``feedback`` the ground truth of every ``FEEDBACK_BATCH`` answered rows is posted at
    once, as an expert on site would confirm the species.
    """

    def ask(row: pd.Series) -> Answer:
        instance = {name: _json(row[name]) for name in FEATURES}
        response = client.post(f"{url}/v1/models/{deployment}:predict", json={"instances": [instance]})
        response.raise_for_status()
        return Answer(
            response.headers["x-request-id"],
            int(response.headers["x-mlkube-version"]),
            response.json()["predictions"][0],
            row[TARGET],
        )

    answers: list[Answer] = []
    with httpx.Client(timeout=30) as client, concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for start in range(0, len(rows), FEEDBACK_BATCH):
            batch = list(pool.map(ask, (row for _, row in rows.iloc[start : start + FEEDBACK_BATCH].iterrows())))
            if feedback:
                items = [{"requestId": a.request_id, "groundTruth": a.truth} for a in batch]
                client.post(f"{url}/v1/feedback", json={"items": items}).raise_for_status()
            answers.extend(batch)
    return answers


def f1(answers: list[Answer]) -> float:
    """Macro F1 of the answers against their ground truth (the project's primary metric)."""
    from sklearn import metrics

    return float(metrics.f1_score([a.truth for a in answers], [a.prediction for a in answers], average="macro"))


class AlertReceiver:
    """A tiny Alertmanager-compatible receiver on loopback: ``POST /api/v2/alerts`` stores, ``GET`` lists."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.posts = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"[]")
                if self.path != "/api/v2/alerts" or not isinstance(body, list):
                    self._answer(400, {"error": "POST a list of alerts to /api/v2/alerts"})
                    return
                with lock:
                    receiver.posts += 1
                    receiver.alerts.extend(body)
                self._answer(200, {})

            def do_GET(self) -> None:
                with lock:
                    self._answer(200, list(receiver.alerts))

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v2/alerts"

    def firing(self) -> list[dict[str, Any]]:
        """Alerts received without ``endsAt``."""
        return [a for a in self.alerts if not a.get("endsAt")]

    def __enter__(self) -> AlertReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json(value: Any) -> Any:
    """A cell as JSON: numpy scalars as Python values, missing values as null."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value
