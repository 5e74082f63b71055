"""The model server: a KServe `Model` that serves one mlkube model version.

Lifecycle (KServe's): `load()` verifies every file of the version against its SHA-256 manifest
before anything is deserialised, loads the fitted pipeline, the feature schema and the
explanation baselines, then sets `ready`; a tampered or incomplete version makes the process
exit with the offending file in the log (and in the termination message), so it never becomes
ready. `predict()` validates the request against the card's featureSchema (400 naming the
field), predicts with one pipeline pass, applies the deployment's postprocessing and answers in
the protocol asked (KServe V1 `:predict`, V2/Open Inference Protocol `/infer`). `explain()`
answers `:explain` with occlusion attributions (see `explain.py`). Every response carries
`x-request-id` (the client's, or a new one); V2 responses also carry it as `id`.

Entry point: `python -m mlkube.serving.server --model_name NAME --model_dir /mnt/models
[--http_port 8080] [--postprocessing JSON] [--unknown_categories accept|reject]`. The model dir
is a container path (resolved with `mlkube.common.containerpath`) or a `file://`/`s3://` URI that is
downloaded first. The HTTP server binds to `$MLKUBE_BIND_HOST` (default 0.0.0.0); KServe's gRPC
server is off unless `--enable_grpc true` (it always binds every address, so two local pods
would collide on its port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pathlib
import sys
import tempfile
import uuid
from typing import Any

import kserve
import orjson
import pandas as pd
from kserve import errors as kserve_errors
from kserve import model_server as kserve_model_server
from kserve.protocol import infer_type
from kserve.protocol.rest import server as kserve_rest_server

from mlkube.common import containerpath
from mlkube.ml import artifacts
from mlkube.ml import errors as ml_errors
from mlkube.serving import explain, postprocessing, schema

log = logging.getLogger("mlkube.serving.server")

REQUEST_ID = "x-request-id"
_REQUEST_ID_BYTES = REQUEST_ID.encode()
TERMINATION_LOG = "/dev/termination-log"


class VersionModel(kserve.Model):
    """One verified model version behind KServe's V1 and V2 endpoints."""

    def __init__(
        self,
        name: str,
        model_dir: pathlib.Path,
        *,
        postprocessing_block: postprocessing.Postprocessing | None = None,
        reject_unknown_categories: bool = False,
    ):
        super().__init__(name, return_response_headers=True)
        self.model_dir = model_dir
        self.postprocessing_block = postprocessing_block or postprocessing.Postprocessing()
        self.reject_unknown_categories = reject_unknown_categories
        self.digest: str | None = None

    def load(self) -> bool:
        """Verify, then load; raises `artifacts.IntegrityError` (naming the file) or ValueError."""
        version = artifacts.load(self.model_dir)  # verifies every file against the manifest first
        self.digest = version.digest
        self.schema = schema.FeatureSchema.from_card(version.card, reject_unknown_categories=self.reject_unknown_categories)
        self.decider = postprocessing.Decider(version.pipeline, version.card, self.postprocessing_block)
        reference = pd.read_parquet(self.model_dir / artifacts.REFERENCE)
        self.explainer = explain.Explainer(
            version.pipeline,
            is_classifier=self.decider.is_classifier,
            positive_index=self.decider.positive_index,
            baseline=explain.baselines(reference, self.schema),
        )
        self.ready = True
        log.info("loaded model version %s (%s) from %s", self.name, self.digest, self.model_dir)
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        # The same headers dict reaches predict/explain and postprocess: fix the id here once.
        if headers is not None and not headers.get(REQUEST_ID):
            body_id = payload.id if isinstance(payload, infer_type.InferRequest) else None
            headers[REQUEST_ID] = body_id or uuid.uuid4().hex
        return payload

    def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict | None = None) -> Any:
        prediction = self.decider.predict(self._frame(payload))
        if isinstance(payload, infer_type.InferRequest):
            return self._v2_response(prediction, _request_id(headers, payload))
        body = {"predictions": prediction.labels}
        if prediction.probabilities is not None:
            body["probabilities"] = prediction.probabilities
        return body

    def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict:
        frame = self._frame(payload)
        prediction = self.decider.predict(frame)
        return {
            "predictions": prediction.labels,
            "explanations": self.explainer.explain(frame),
            "method": explain.METHOD,
        }

    async def postprocess(self, result: Any, headers: dict | None = None, response_headers: dict | None = None) -> Any:
        if response_headers is not None and headers is not None:
            response_headers[REQUEST_ID] = headers[REQUEST_ID]
        return result

    def _frame(self, payload: Any) -> pd.DataFrame:
        try:
            if isinstance(payload, infer_type.InferRequest):
                return self.schema.frame_from_inputs(payload.inputs)
            if isinstance(payload, (bytes, str)):  # a JSON body sent without a JSON content-type
                payload = _json_body(payload)
            if not isinstance(payload, dict) or "instances" not in payload:
                raise schema.SchemaError('expected a JSON object with "instances" (KServe V1)')
            return self.schema.frame_from_instances(payload["instances"])
        except schema.SchemaError as e:
            raise kserve_errors.InvalidInput(str(e)) from e

    def _v2_response(self, prediction: postprocessing.Prediction, request_id: str) -> infer_type.InferResponse:
        labels = prediction.labels
        outputs = [_output("predict", labels, [len(labels)])]
        if prediction.probability_matrix is not None:
            matrix = prediction.probability_matrix
            probabilities = _output("probabilities", matrix.ravel().tolist(), list(matrix.shape), "FP64")
            # V2 parameters hold scalars only, so the column order travels as a JSON string.
            probabilities.parameters = {"classes": json.dumps(prediction.class_names)}
            outputs.append(probabilities)
        return infer_type.InferResponse(
            response_id=request_id,
            model_name=self.name,
            infer_outputs=outputs,
        )


def _request_id(headers: dict[str, str] | None, request: infer_type.InferRequest | None = None) -> str:
    if headers and headers.get(REQUEST_ID):
        return headers[REQUEST_ID]
    if request is not None and request.id:
        return request.id
    return uuid.uuid4().hex


def _json_body(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise schema.SchemaError(f"request body is not JSON: {e}") from e


def _output(name: str, data: list, shape: list[int], datatype: str | None = None) -> infer_type.InferOutput:
    if datatype is None:
        if all(isinstance(v, bool) for v in data):
            datatype = "BOOL"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in data):
            datatype = "INT64"
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
            datatype = "FP64"
        else:
            datatype, data = "BYTES", [str(v) for v in data]
    return infer_type.InferOutput(name=name, shape=shape, datatype=datatype, data=data)


class RequestIdMiddleware:
    """ASGI middleware: a response that carries no `x-request-id` (errors, health) gets the client's or a new one.

    Successful predictions set the header themselves (`VersionModel.postprocess`); this covers the
    responses KServe's exception handlers build, so a 400 can be correlated with its request too.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if not any(name.lower() == _REQUEST_ID_BYTES for name, _ in headers):
                    sent = next((v for k, v in scope["headers"] if k == _REQUEST_ID_BYTES), None)
                    message = {**message, "headers": [*headers, (_REQUEST_ID_BYTES, sent or uuid.uuid4().hex.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


class BoundModelServer(kserve.ModelServer):
    """KServe's ModelServer with the REST server bound to one host, and request ids on every response."""

    def __init__(self, *, bind_host: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.bind_host = bind_host

    def start(self, models: list[kserve.Model]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = kserve_rest_server.RESTServer(
            kserve_model_server.FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            self.model_repository_extension,
            self.http_port,
            access_log_format=self.access_log_format,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.bind_host
        kserve_model_server.app.add_middleware(RequestIdMiddleware)
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


def model_directory(model_dir: str) -> pathlib.Path:
    """Where the version's files are locally: a resolved container path, or a fresh download of a URI."""
    if "://" in model_dir:
        local = pathlib.Path(tempfile.mkdtemp(prefix="mlkube-model-"))
        return artifacts.download(model_dir, local)
    return containerpath.resolve(model_dir)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(parents=[kserve_model_server.parser], description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", required=True, help="container path or file:// / s3:// URI of the version")
    parser.add_argument(
        "--postprocessing",
        default=os.environ.get("MLKUBE_POSTPROCESSING"),
        help='JSON, e.g. {"threshold": 0.35, "labels": {"1": "churn"}} (default: $MLKUBE_POSTPROCESSING)',
    )
    parser.add_argument(
        "--unknown_categories",
        choices=["accept", "reject"],
        default=os.environ.get("MLKUBE_UNKNOWN_CATEGORIES", "accept"),
        help="accept (the pipeline's encoder handles unseen categories) or reject with 400",
    )
    return parser


def _fail(message: str) -> None:
    log.error("%s", message)
    try:
        containerpath.resolve(TERMINATION_LOG).write_text(message + "\n")
    except OSError:
        pass  # not in a container: the log line is the report
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args, _ = _parser().parse_known_args(argv)
    if args.workers != 1:
        _fail("--workers: the model server runs one worker per process; scale with replicas instead")
    try:
        block = postprocessing.Postprocessing.parse(args.postprocessing)
        model = VersionModel(
            args.model_name,
            model_directory(args.model_dir),
            postprocessing_block=block,
            reject_unknown_categories=args.unknown_categories == "reject",
        )
        model.load()
    except artifacts.IntegrityError as e:
        _fail(f"refusing to serve {args.model_dir}: integrity check failed: {e}")
    except (ValueError, ml_errors.MLError, OSError) as e:
        _fail(f"cannot serve {args.model_dir}: {e}")
    server = BoundModelServer(
        bind_host=os.environ.get("MLKUBE_BIND_HOST", "0.0.0.0"),
        http_port=args.http_port,
        enable_grpc=False,
        enable_latency_logging=args.enable_latency_logging,
    )
    server.start([model])


if __name__ == "__main__":
    main()
