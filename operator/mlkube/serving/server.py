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

The server serves its one version for its whole life: KServe's model repository routes
(`/v2/repository/models/<m>/load|unload`) are off (404), and readiness (`/v2/health/ready`,
`/v2/models/<m>/ready`, V1 `/v1/models/<m>`) is true only while the version is loaded. A
request body over `--max_request_bytes` (default 8 MiB) is refused with 413 before it is read.

Entry point: `python -m mlkube.serving.server --model_name NAME --model_dir /mnt/models
[--http_port 8080] [--postprocessing JSON] [--unknown_categories accept|reject]
[--max_request_bytes N]`. The model dir
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
from fastapi import responses as fastapi_responses
from kserve import errors as kserve_errors
from kserve import model_server as kserve_model_server
from kserve.protocol import dataplane as kserve_dataplane
from kserve.protocol import infer_type
from kserve.protocol.rest import server as kserve_rest_server

from mlkube.common import containerpath
from mlkube.ml import artifacts
from mlkube.ml import errors as ml_errors
from mlkube.serving import asgi, explain, postprocessing, schema

log = logging.getLogger("mlkube.serving.server")

REQUEST_ID = asgi.REQUEST_ID
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
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
        self.decider: postprocessing.Decider | None = None

    def load(self) -> bool:
        """Verify, then load; raises `artifacts.IntegrityError` (naming the file) or ValueError."""
        # Verifies the manifest's digest against the registry's (pinned by the operator on the
        # InferenceService), then every file against the manifest, before unpickling anything.
        version = artifacts.load(self.model_dir, expected_digest=artifacts.pinned_digest())
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

    async def healthy(self) -> bool:
        """Ready only while the version is loaded: `load` done, and not stopped (KServe's `stop()`,
        called on SIGTERM, clears `ready`, so the server reports not ready while it drains)."""
        return self.ready and self.decider is not None

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


class SingleModelDataPlane(kserve_dataplane.DataPlane):
    """KServe's data plane for a server that serves its one model for its whole life.

    Server readiness (`/v2/health/ready`) is the model's: ready only while every registered
    model is loaded (KServe's own answer is always ready). The metadata lists no protocol
    extension: the model repository extension is off (see `SingleModelRESTServer`)."""

    async def ready(self) -> bool:
        models = list(self.model_registry.get_models().values())
        return bool(models) and all([await model.healthy() for model in models])

    def metadata(self) -> dict:
        return {**super().metadata(), "extensions": []}


REPOSITORY_PREFIX = "/v2/repository"
REPOSITORY_DISABLED = (
    "the model repository API (load/unload) is disabled: this server serves one verified model version "
    "for its whole life; to serve another version, change the InferenceService"
)


async def _repository_disabled(path: str) -> fastapi_responses.JSONResponse:
    return fastapi_responses.JSONResponse({"error": REPOSITORY_DISABLED}, status_code=404)


class SingleModelRESTServer(kserve_rest_server.RESTServer):
    """KServe's REST server without the model repository routes (`/v2/repository/...` load/unload).

    With them anyone who reaches the server could unload its model (predictions then 404 while
    the server stayed ready) and not load it back. Every path under the prefix answers 404 with
    `REPOSITORY_DISABLED`."""

    def _register_endpoints(self, app: Any) -> None:
        super()._register_endpoints(app)
        # KServe registers load/unload inside its V2 router, which FastAPI includes as a whole (and,
        # in recent versions, lazily): rather than reach into it, a route placed first answers every
        # path under the prefix, so the repository routes are never matched.
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        app.add_api_route(REPOSITORY_PREFIX + "/{path:path}", _repository_disabled, methods=methods, include_in_schema=False)
        app.router.routes.insert(0, app.router.routes.pop())


class BoundModelServer(kserve.ModelServer):
    """KServe's ModelServer bound to one host, serving one model: readiness is the model's, no
    repository routes, request bodies bounded, request ids on every response."""

    def __init__(self, *, bind_host: str, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, **kwargs: Any):
        super().__init__(**kwargs)
        self.bind_host = bind_host
        self.max_request_bytes = max_request_bytes
        self.dataplane = SingleModelDataPlane(model_registry=self.registered_models)

    def start(self, models: list[kserve.Model]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = SingleModelRESTServer(
            kserve_model_server.FASTAPI_APP_IMPORT_STRING,
            self.dataplane,
            None,  # no model repository extension: nothing may load or unload models
            self.http_port,
            access_log_format=self.access_log_format,
            grace_period=self.grace_period,
            event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.bind_host
        # add_middleware wraps the outside: the body limit runs first, and its 413 gets a request id.
        kserve_model_server.app.add_middleware(asgi.BodyLimitMiddleware, max_bytes=self.max_request_bytes)
        kserve_model_server.app.add_middleware(asgi.RequestIdMiddleware)
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


def model_directory(model_dir: str) -> pathlib.Path:
    """Where the version's files are locally: a resolved container path, or a fresh download of a URI."""
    if "://" in model_dir:
        local = pathlib.Path(tempfile.mkdtemp(prefix="mlkube-model-"))
        return artifacts.download(model_dir, local, expected_digest=artifacts.pinned_digest())
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
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=int(os.environ.get("MLKUBE_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES)),
        help="largest request body accepted; larger ones get 413 (default: $MLKUBE_MAX_REQUEST_BYTES or 8 MiB)",
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
    if args.max_request_bytes < 1:
        _fail(f"--max_request_bytes: expected a positive number of bytes, got {args.max_request_bytes}")
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
        max_request_bytes=args.max_request_bytes,
    )
    server.start([model])


if __name__ == "__main__":
    main()
