"""``python -m mlkube.replay`` on a capture store written in the router's layout, with the candidate
behind an in-process stand-in for the router's HTTP client: which captured requests it replays (the newest ones the stable
version answered, client traffic only), what it counts (errors, agreement with the recorded
answer, quality against feedback), and its answer as the Job carries it."""

import json
import pathlib

import pytest

from mlkube import replay
from mlkube.api import replay as replay_api
from mlkube.serving import upstream

DAY = "2026-11-24"


def record(i, *, version=1, role="stable", status=200, protocol="v1", x=1.0, label="a", **extra):
    if protocol == "v2":
        request = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [x]}]}
        response = {"outputs": [{"name": "predict", "shape": [1], "datatype": "BYTES", "data": [label]}]}
    else:
        request, response = {"instances": [{"x": x}]}, {"predictions": [label]}
    return {
        "requestId": f"r{i}",
        "timestamp": f"{DAY}T10:{i // 60:02d}:{i % 60:02d}.000Z",
        "namespace": "ml",
        "deployment": "prod",
        "version": version,
        "role": role,
        "protocol": protocol,
        "verb": "predict",
        "status": status,
        "request": request,
        "response": response,
        **extra,
    }


def write(store: pathlib.Path, kind: str, name: str, lines: list[dict]) -> None:
    folder = store / kind / "ml" / "prod" / f"date={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(line) + "\n" for line in lines))


def request(store: pathlib.Path, **changes) -> replay_api.ReplayRequest:
    doc = {
        "capture": {"uri": store.as_uri(), "namespace": "ml", "deployment": "prod", "version": 1, "size": 100},
        "candidate": {"version": 2, "url": "http://candidate.ml", "model": "prod-v2"},
        "metric": "accuracy",
        **changes,
    }
    return replay_api.ReplayRequest.model_validate(doc)


class Candidate:
    """The candidate version behind the HTTP client's interface (``upstream.Pool.request``): fails
    on x == 0, answers "b" for x == 2 and "a" otherwise."""

    def __init__(self):
        self.calls: list[str] = []

    async def request(self, method, url, *, body=b"", headers=None, timeout=30.0) -> upstream.Response:
        self.calls.append(url)
        doc = json.loads(body)
        x = doc["instances"][0]["x"] if "instances" in doc else doc["inputs"][0]["data"][0]
        if x == 0:
            return answer(500, {"error": "log of zero"})
        label = "b" if x == 2 else "a"
        if "inputs" in doc:
            return answer(200, {"outputs": [{"name": "predict", "datatype": "BYTES", "shape": [1], "data": [label]}]})
        return answer(200, {"predictions": [label]})


def answer(status: int, doc: dict) -> upstream.Response:
    return upstream.Response(status, {"content-type": "application/json"}, json.dumps(doc, separators=(",", ":")).encode())


class Failing:
    """A candidate that cannot be called: ``error`` is raised for every request."""

    def __init__(self, error: Exception):
        self.error = error

    async def request(self, *_args, **_kwargs):
        raise self.error


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    store = tmp_path / "store"
    write(
        store,
        "inference-log",
        "1795000000-router-w-000001.jsonl",
        [
            record(0, x=0.0),  # the candidate fails on it
            record(1, x=2.0),  # the candidate disagrees
            record(2, protocol="v2"),
            record(3, version=2, role="canary"),  # answered by the candidate itself: not the stable's
            record(4, role="shadow"),  # a mirrored copy, not a client request
            record(5, status=500),  # the stable failed: nothing to compare with
            record(6, truncated=True, request="{cut"),  # cannot be replayed
        ],
    )
    write(store, "inference-log", "1795000100-router-w-000002.jsonl", [record(i) for i in range(7, 12)])
    write(
        store,
        "feedback",
        "1795000200-router-w-000003.jsonl",
        [
            {"requestId": "r1", "groundTruth": "b", "timestamp": f"{DAY}T11:00:00.000Z"},  # the candidate was right
            {"requestId": "r7", "groundTruth": "a", "timestamp": f"{DAY}T11:00:00.000Z"},
            {"requestId": "r8", "groundTruth": "b", "timestamp": f"{DAY}T11:00:00.000Z"},  # both wrong
        ],
    )
    return store


def test_the_replay_counts_errors_agreement_and_quality_of_the_stable_versions_requests(store):
    candidate = Candidate()
    result = replay.replay(request(store), pool=candidate)
    assert result == replay_api.ReplayResult(
        requests=8,  # r0, r1, r2, r7..r11
        errors=1,
        compared=7,
        agreed=6,
        labeled=3,
        candidate_score=2,  # r1 and r7
        stable_score=1,  # r7
        skipped=1,
        first_error='HTTP 500: {"error":"log of zero"}',
    )
    assert sorted(set(candidate.calls)) == [
        "http://candidate.ml/v1/models/prod-v2:predict",
        "http://candidate.ml/v2/models/prod-v2/infer",
    ]


def test_only_the_newest_requests_are_replayed(store):
    candidate = Candidate()
    result = replay.replay(request(store, capture={**request(store).capture.wire(), "size": 5}), pool=candidate)
    assert result.requests == 5 and result.errors == 0  # r7..r11, from the newest batch only
    assert len(candidate.calls) == 5


def test_an_unreachable_or_slow_candidate_counts_as_errors(store):
    refused = Failing(upstream.UpstreamError("cannot connect to 10.0.0.9:80: Connection refused"))
    result = replay.replay(request(store), pool=refused)
    assert (result.requests, result.errors) == (8, 8)
    assert result.first_error == "unreachable: cannot connect to 10.0.0.9:80: Connection refused"
    slow = replay.replay(request(store, timeoutSeconds=2), pool=Failing(TimeoutError()))
    assert slow.first_error == "no answer within 2s"


def test_no_captured_traffic_replays_nothing(tmp_path):
    result = replay.replay(request(tmp_path / "empty"), pool=Candidate())
    assert result == replay_api.ReplayResult()


def test_the_answer_is_an_error_naming_what_to_fix_when_the_request_is_wrong():
    assert replay.answer("") == ({"error": "no request: set MLKUBE_REPLAY_REQUEST to the request JSON (or pass it on stdin)"}, 1)
    body, code = replay.answer(json.dumps({"capture": {"uri": "file:///s"}}))
    assert code == 1 and body["error"].startswith("invalid request: request.capture.namespace: Field required")


def test_a_long_first_error_is_shortened_within_the_termination_message():
    encoded = replay.compact({"requests": 1, "errors": 1, "firstError": "x" * 10_000})
    assert len(encoded) <= replay_api.RESULT_LIMIT_BYTES
    assert replay_api.ReplayResult.model_validate_json(encoded).first_error.endswith("...")
