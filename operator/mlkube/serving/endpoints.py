"""The model server's lean request path: V1 `:predict` and V2 `/infer` without KServe's generic handling.

Owns `LeanInference`, the ASGI app the HTTP server runs: it answers `POST /v1/models/<model>:predict`
and `POST /v2/models/<model>/infer` for its one model itself and hands every other request
(health, metadata, `/metrics`, `:explain`, the repository refusal, the unusual bodies below)
unchanged to KServe's FastAPI app. Also owns the two protocols' response bodies (`v1_body`,
`v2_body`), which KServe's path builds from the same functions.

The path: read the body, decode it with orjson, turn it into the schema's validated column
arrays (`schema.Rows`, one pass), let the model score them (batched with concurrent requests
when batching is on), encode the answer with orjson. What a client sees is KServe's: status,
JSON body, `content-type`, `x-request-id` (the client's, else a V2 body's `id`, else a new
one; V2 bodies carry it as `id`), 400 `{"error": ...}` naming the field, 500
`{"error": "<Type> : <message>"}`; KServe's Prometheus histograms
(`request_preprocess_seconds`, `request_predict_seconds`, `request_postprocess_seconds`) and
its latency log line (`--enable_latency_logging`) are kept; KServe's per-route timing lines
(`kserve.trace ... time:wall|cpu`) are not printed for these two routes.

Handed to KServe's app instead, which answers them as it always did: a model not loaded (503),
a body without a Content-Length or over the limit (413), a content type other than
`application/json`, CloudEvents, the V2 binary extension, a body that is not a JSON object, a
V1 body without an `instances` list, a V2 body in anything but the canonical shape (fields of
another type, FP16 data).

Must not: load models or decide predictions (the model does); touch KServe's app.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, NamedTuple

import orjson
from kserve import logging as kserve_logging
from kserve import metrics as kserve_metrics

from mlkube.serving import postprocessing, schema

REQUEST_ID = b"x-request-id"
_JSON = b"application/json"
_V1, _V2 = "v1", "v2"
_V2_FIELDS = frozenset(("id", "parameters", "inputs", "outputs"))
_INPUT_FIELDS = frozenset(("name", "shape", "datatype", "parameters", "data"))
_PARAMETER_TYPES = (str, int, float, bool)


class Input(NamedTuple):
    """A V2 input as the schema reads it (the attributes of KServe's InferInput it uses)."""

    name: str
    shape: list[int]
    data: list


# -- response bodies (shared with KServe's path) ------------------------------------------------


def v1_body(prediction: postprocessing.Prediction) -> dict[str, Any]:
    """The V1 `:predict` body: `predictions`, and `probabilities` for classifiers."""
    body: dict[str, Any] = {"predictions": prediction.labels}
    if prediction.probabilities is not None:
        body["probabilities"] = prediction.probabilities
    return body


def v2_outputs(prediction: postprocessing.Prediction) -> list[dict[str, Any]]:
    """The V2 outputs: `predict` (labels), and `probabilities` ([n, classes], FP64) for classifiers;
    for records, `predict` holds the first field (named in its parameters) and every other field is
    an output of its own name."""
    if prediction.records is not None:
        (first, values), *others = prediction.records.items()
        predict = v2_output("predict", values, [len(values)])
        predict["parameters"] = {"field": first}
        return [predict, *(v2_output(name, data, [len(data)]) for name, data in others)]
    labels = prediction.labels
    outputs = [v2_output("predict", labels, [len(labels)])]
    if prediction.probability_matrix is not None:
        matrix = prediction.probability_matrix
        probabilities = v2_output("probabilities", matrix.ravel().tolist(), list(matrix.shape), "FP64")
        # V2 parameters hold scalars only, so the column order travels as a JSON string.
        probabilities["parameters"] = {"classes": json.dumps(prediction.class_names)}
        outputs.append(probabilities)
    return outputs


def v2_output(name: str, data: list, shape: list[int], datatype: str | None = None) -> dict[str, Any]:
    """One V2 output; the datatype, when not given, is that of the values (BYTES for text)."""
    if datatype is None:
        if all(isinstance(v, bool) for v in data):
            datatype = "BOOL"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in data):
            datatype = "INT64"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
            datatype = "FP64"
        else:
            datatype, data = "BYTES", [str(v) for v in data]
    return {"name": name, "shape": shape, "datatype": datatype, "parameters": None, "data": data}


def v2_body(prediction: postprocessing.Prediction, *, model_name: str, request_id: str) -> dict[str, Any]:
    """The V2 `/infer` body, with the fields (and nulls) KServe's InferenceResponse serialises."""
    return {
        "model_name": model_name,
        "model_version": None,
        "id": request_id,
        "parameters": None,
        "outputs": v2_outputs(prediction),
    }


# -- the ASGI app -------------------------------------------------------------------------------


class LeanInference:
    """ASGI app: `model`'s V1 predict and V2 infer answered here, everything else by `app` (KServe's).

    `model` is the served `server.VersionModel`: its `name`, `ready`, `schema`,
    `enable_latency_logging` and `async score(rows) -> Prediction` are what this uses."""

    def __init__(self, app: Any, model: Any, *, max_request_bytes: int):
        self.app = app
        self.model = model
        self.max_request_bytes = max_request_bytes
        self._routes = {f"/v1/models/{model.name}:predict": _V1, f"/v2/models/{model.name}/infer": _V2}
        labels = kserve_metrics.get_labels(model.name)
        self._preprocess_seconds = kserve_metrics.PRE_HIST_TIME.labels(**labels)
        self._predict_seconds = kserve_metrics.PREDICT_HIST_TIME.labels(**labels)
        self._postprocess_seconds = kserve_metrics.POST_HIST_TIME.labels(**labels)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        protocol = self._routes.get(scope.get("path")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if protocol is None or not self.model.ready:
            await self.app(scope, receive, send)
            return
        length, header_id = None, None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == REQUEST_ID:
                header_id = value  # the last one, as KServe's header dict keeps it
            elif (
                (name == b"content-type" and value != _JSON)
                or name.startswith(b"ce-")
                or name == b"inference-header-content-length"
            ):
                await self.app(scope, receive, send)
                return
        if length is None or not length.isdigit() or int(length) > self.max_request_bytes:
            await self.app(scope, receive, send)  # KServe's app answers 400, 413, or reads the chunked body
            return
        body = await _body(receive)
        if body is None:
            return  # the client went away
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        parsed = _v1_instances(doc) if protocol is _V1 else _v2_inputs(doc)
        if parsed is None:
            await self.app(scope, _replay(body, receive), send)
            return
        await self._answer(protocol, parsed, header_id.decode("latin-1") if header_id else None, send)

    async def _answer(self, protocol: str, parsed: Any, header_id: str | None, send: Any) -> None:
        model = self.model
        if protocol is _V1:
            request_id = header_id or uuid.uuid4().hex
        else:
            parsed, body_id = parsed
            request_id = header_id or body_id or uuid.uuid4().hex
        started = time.time()
        try:
            if protocol is _V1:
                rows = model.schema.rows_from_instances(parsed)
            else:
                rows = model.schema.rows_from_inputs(parsed)
        except schema.SchemaError as e:
            kserve_logging.logger.error("Exception:", exc_info=e)
            await _respond(send, 400, orjson.dumps({"error": str(e)}), request_id)
            return
        validated = time.time()
        try:
            prediction = await model.score(rows)
        except Exception as e:  # the pipeline failed on this request's rows: KServe's 500
            kserve_logging.logger.error("Exception:", exc_info=e)
            await _respond(send, 500, orjson.dumps({"error": f"{type(e).__name__} : {e}"}), request_id)
            return
        scored = time.time()
        if protocol is _V1:
            payload = orjson.dumps(v1_body(prediction))
        else:
            payload = orjson.dumps(v2_body(prediction, model_name=model.name, request_id=request_id))
        encoded = time.time()
        self._preprocess_seconds.observe(validated - started)
        self._predict_seconds.observe(scored - validated)
        self._postprocess_seconds.observe(encoded - scored)
        if model.enable_latency_logging:
            kserve_logging.trace_logger.info(
                f"requestId: {request_id}, preprocess_ms: {_ms(started, validated)}, explain_ms: 0, "
                f"predict_ms: {_ms(validated, scored)}, postprocess_ms: {_ms(scored, encoded)}"
            )
        await _respond(send, 200, payload, request_id)


def _v1_instances(doc: Any) -> list | None:
    """A V1 body's `instances`, or None when KServe's generic path should answer it."""
    if type(doc) is not dict or "specversion" in doc:  # "specversion": a structured CloudEvent
        return None
    instances = doc.get("instances")
    return instances if type(instances) is list else None


def _v2_inputs(doc: Any) -> tuple[list[Input], str | None] | None:
    """A canonical V2 body's inputs and id, or None when KServe's generic path should answer it
    (it validates every field and answers 422 or 400 with its own messages)."""
    if type(doc) is not dict or not doc.keys() <= _V2_FIELDS:
        return None
    body_id, inputs = doc.get("id"), doc.get("inputs")
    if (body_id is not None and type(body_id) is not str) or type(inputs) is not list:
        return None
    if not _is_parameters(doc.get("parameters")) or not _is_outputs(doc.get("outputs")):
        return None
    parsed = []
    for item in inputs:
        if type(item) is not dict or not item.keys() <= _INPUT_FIELDS or not _is_parameters(item.get("parameters")):
            return None
        name, shape, datatype, data = item.get("name"), item.get("shape"), item.get("datatype"), item.get("data")
        if type(name) is not str or type(datatype) is not str or type(data) is not list or type(shape) is not list:
            return None
        if datatype == "FP16" or not all(type(n) is int for n in shape):
            return None
        parsed.append(Input(name, shape, data))
    return parsed, body_id


def _is_parameters(value: Any) -> bool:
    return value is None or (type(value) is dict and all(type(v) in _PARAMETER_TYPES for v in value.values()))


def _is_outputs(value: Any) -> bool:
    if value is None:
        return True
    return type(value) is list and all(
        type(o) is dict
        and type(o.get("name")) is str
        and o.keys() <= {"name", "parameters"}
        and _is_parameters(o.get("parameters"))
        for o in value
    )


async def _body(receive: Any) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _respond(send: Any, status: int, payload: bytes, request_id: str) -> None:
    headers = [
        (b"content-length", str(len(payload)).encode()),
        (b"content-type", _JSON),
        (REQUEST_ID, request_id.encode("latin-1")),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 9)
