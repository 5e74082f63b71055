"""``python -m mlkube.replay`` as its Job runs it: a process reading a capture store in the router's
layout and calling a real model server directly. Version 1's real answers are captured; version 2
(another regularisation, so some predictions differ) replays them: a request version 1 answered
that version 2 refuses counts as an error, agreement is measured against what version 1 said, and
quality against the feedback that exists. The answer is in the termination-message file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import modelfactory
from serving_processes import CLIENT

from mlkube.api import replay as replay_api

DAY = "2026-11-24"


def captured(i: int, instance: dict, response: dict) -> dict:
    return {
        "requestId": f"r{i}",
        "timestamp": f"{DAY}T10:00:{i:02d}.000Z",
        "namespace": "ml",
        "deployment": "churn-prod",
        "version": 1,
        "role": "stable",
        "protocol": "v1",
        "verb": "predict",
        "status": 200,
        "request": {"instances": [instance]},
        "response": response,
    }


def test_the_replay_scores_captured_requests_on_the_candidate_server(servers, tmp_path):
    rows = [modelfactory.instance(i) for i in range(40)]
    stable = [CLIENT.post(f"{servers['v1'].url}/v1/models/churn-prod-v1:predict", json={"instances": [r]}).json() for r in rows]
    # A request version 1 answered but version 2 refuses (it lacks a feature version 2 needs):
    # the replay must count it as the candidate's error.
    lacking = {k: v for k, v in rows[0].items() if k != "mean_area"}
    log = [captured(i, row, answer) for i, (row, answer) in enumerate(zip(rows, stable))]
    log.append(captured(40, lacking, stable[0]))
    folder = tmp_path / "store" / "inference-log" / "ml" / "churn-prod" / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "1795000000-router-w-000001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    truth = [
        {"requestId": f"r{i}", "groundTruth": stable[i]["predictions"][0], "timestamp": f"{DAY}T11:00:00.000Z"} for i in range(10)
    ]
    feedback = tmp_path / "store" / "feedback" / "ml" / "churn-prod" / f"date={DAY}"
    feedback.mkdir(parents=True)
    (feedback / "1795000100-router-w-000002.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))

    request = {
        "capture": {
            "uri": (tmp_path / "store").as_uri(),
            "namespace": "ml",
            "deployment": "churn-prod",
            "version": 1,
            "size": 100,
        },
        "candidate": {"version": 2, "url": servers["v2"].url, "model": "churn-prod-v2"},
        "metric": "accuracy",
        "concurrency": 4,
    }
    answer_file = tmp_path / "termination-log"
    done = subprocess.run(
        [sys.executable, "-m", "mlkube.replay", "--result", str(answer_file)],
        env={**os.environ, replay_api.REQUEST_ENV: json.dumps(request)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = replay_api.ReplayResult.model_validate_json(answer_file.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result.wire()

    candidate = [
        CLIENT.post(f"{servers['v2'].url}/v1/models/churn-prod-v2:predict", json={"instances": [r]}).json() for r in rows
    ]
    agreeing = sum(c["predictions"] == s["predictions"] for c, s in zip(candidate, stable))
    assert 0 < agreeing < 40  # the two versions do differ on some of these rows
    assert (result.requests, result.errors, result.compared, result.agreed) == (41, 1, 40, agreeing)
    assert result.first_error.startswith("HTTP 400") and "mean_area" in result.first_error
    right = sum(candidate[i]["predictions"] == stable[i]["predictions"] for i in range(10))
    assert (result.labeled, result.stable_score, result.candidate_score) == (10, 10, right)
