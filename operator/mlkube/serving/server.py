"""The model server: a KServe `Model` that serves one mlkube model version.

Lifecycle (KServe's): `load()` verifies every file of the version against its SHA-256 manifest
before anything is deserialised, loads the fitted pipeline, the feature schema and the
explanation baselines, then sets `ready`; a tampered or incomplete version makes the process
exit with the offending file in the log (and in the termination message), so it never becomes
ready. A prediction validates the request against the card's featureSchema (400 naming the
field), predicts with one pipeline pass, applies the deployment's postprocessing and answers in
the protocol asked (KServe V1 `:predict`, V2/Open Inference Protocol `/infer`). `explain()`
answers `:explain` with occlusion attributions (see `explain.py`). Every response carries
`x-request-id` (the client's, or a new one); V2 responses also carry it as `id`.

Predictions take the lean path of `endpoints.py` (KServe's app answers everything else, and the
unusual bodies, through `predict`). With batching on (the default; `--batching`, from the
ModelDeployment's `spec.serving.batching`), the lean path's concurrent requests are validated
one by one, scored in one pipeline call (`batcher.py`) and answered one by one; when that call
fails, each request of the batch is scored alone, so a request the pipeline cannot score fails
alone.

The server serves its one version for its whole life: KServe's model repository routes
(`/v2/repository/models/<m>/load|unload`) are off (404), and readiness (`/v2/health/ready`,
`/v2/models/<m>/ready`, V1 `/v1/models/<m>`) is true only while the version is loaded. A
request body over `--max_request_bytes` (default 8 MiB) is refused with 413 before it is read.

Entry point: `python -m mlkube.serving.server --model_name NAME --model_dir /mnt/models
[--http_port 8080] [--postprocessing JSON] [--unknown_categories accept|reject]
[--max_request_bytes N] [--batching JSON]`. The model dir
is a container path (resolved with `mlkube.common.containerpath`) or a `file://`/`s3://` URI that is
downloaded first. The HTTP server binds to `$MLKUBE_BIND_HOST` (default 0.0.0.0); KServe's gRPC
server is off unless `--enable_grpc true` (it always binds every address, so two local pods
would collide on its port). The event loop is uvloop's when `--event_loop` is auto (the default) or
uvloop and uvloop is installed, as KServe's flag says (KServe's own single-process start ignores it).
"""

from __future__ import annotations

import argparse
import asyncio
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
import prometheus_client
import pydantic
from fastapi import responses as fastapi_responses
from kserve import errors as kserve_errors
from kserve import model_server as kserve_model_server
from kserve.protocol import dataplane as kserve_dataplane
from kserve.protocol import infer_type
from kserve.protocol.rest import server as kserve_rest_server

from mlkube.api import scaling
from mlkube.common import containerpath
from mlkube.ml import artifacts
from mlkube.ml import errors as ml_errors
from mlkube.serving import asgi, batcher, endpoints, explain, postprocessing, schema

log = logging.getLogger("mlkube.serving.server")

REQUEST_ID = asgi.REQUEST_ID
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
TERMINATION_LOG = "/dev/termination-log"
BATCHING_ENV = "MLKUBE_BATCHING"

BATCH_REQUESTS = prometheus_client.Histogram(
    "mlkube_predict_batch_requests",
    "Requests scored together in one pipeline call (batching on)",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


class VersionModel(kserve.Model):
    """One verified model version behind KServe's V1 and V2 endpoints."""

    def __init__(
        self,
        name: str,
        model_dir: pathlib.Path,
        *,
        postprocessing_block: postprocessing.Postprocessing | None = None,
        reject_unknown_categories: bool = False,
        batching: scaling.Batching | None = None,
    ):
        super().__init__(name, return_response_headers=True)
        self.model_dir = model_dir
        self.postprocessing_block = postprocessing_block or postprocessing.Postprocessing()
        self.reject_unknown_categories = reject_unknown_categories
        self.batching = batching or scaling.Batching()
        self.digest: str | None = None
        self.decider: postprocessing.Decider | None = None
        self.batcher: batcher.Batcher | None = None

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
            text_features=tuple(f.name for f in self.schema.features if f.kind == "text"),
        )
        if self.batching.enabled:
            self._batch_requests = BATCH_REQUESTS.labels(model_name=self.name)
            self.batcher = batcher.Batcher(
                self._score_batch,
                max_rows=self.batching.max_batch_size,
                max_latency=self.batching.max_latency_seconds(),
                rows_of=_row_count,
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
        """KServe's path (the unusual bodies the lean path hands over): the same validation and
        bodies; scored at once, alone (a synchronous call, as KServe's Model contract has it)."""
        prediction = self.decider.predict(self.schema.frame([self._rows(payload)]))
        if isinstance(payload, infer_type.InferRequest):
            return self._v2_response(prediction, _request_id(headers, payload))
        return endpoints.v1_body(prediction)

    async def score(self, rows: schema.Rows) -> postprocessing.Prediction:
        """The prediction for one request's validated rows; raises what the pipeline raised for them.

        With batching on, the rows are scored together with concurrent requests' rows."""
        if self.batcher is not None:
            return await self.batcher.submit(rows)
        return self.decider.predict(self.schema.frame([rows]))

    def _score_batch(self, batch: list[schema.Rows]) -> list[postprocessing.Prediction | Exception]:
        """One prediction or exception per request of `batch`: one pipeline call, and when it
        fails, one call per request, so a request the pipeline cannot score fails alone."""
        self._batch_requests.observe(len(batch))
        try:
            prediction = self.decider.predict(self.schema.frame(batch))
        except Exception as e:  # any failure of the pipeline belongs to some request of the batch
            if len(batch) == 1:
                return [e]
            return [self._score_alone(rows) for rows in batch]
        return prediction.split([rows.count for rows in batch]) if len(batch) > 1 else [prediction]

    def _score_alone(self, rows: schema.Rows) -> postprocessing.Prediction | Exception:
        try:
            return self.decider.predict(self.schema.frame([rows]))
        except Exception as e:  # this request's own failure: its 500
            return e

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
        return self.schema.frame([self._rows(payload)])

    def _rows(self, payload: Any) -> schema.Rows:
        try:
            if isinstance(payload, infer_type.InferRequest):
                return self.schema.rows_from_inputs(payload.inputs)
            if isinstance(payload, (bytes, str)):  # a JSON body sent without a JSON content-type
                payload = _json_body(payload)
            if not isinstance(payload, dict) or "instances" not in payload:
                raise schema.SchemaError('expected a JSON object with "instances" (KServe V1)')
            return self.schema.rows_from_instances(payload["instances"])
        except schema.SchemaError as e:
            raise kserve_errors.InvalidInput(str(e)) from e

    def _v2_response(self, prediction: postprocessing.Prediction, request_id: str) -> infer_type.InferResponse:
        outputs = [
            infer_type.InferOutput(
                name=o["name"], shape=o["shape"], datatype=o["datatype"], data=o["data"], parameters=o["parameters"]
            )
            for o in endpoints.v2_outputs(prediction)
        ]
        return infer_type.InferResponse(response_id=request_id, model_name=self.name, infer_outputs=outputs)


def _row_count(rows: schema.Rows) -> int:
    return rows.count


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
    """KServe's ModelServer bound to one host, serving one model: predictions on the lean path,
    readiness that is the model's, no repository routes, request bodies bounded, request ids on
    every response."""

    def __init__(self, *, bind_host: str, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, **kwargs: Any):
        super().__init__(**kwargs)
        self.bind_host = bind_host
        self.max_request_bytes = max_request_bytes
        self.dataplane = SingleModelDataPlane(model_registry=self.registered_models)

    def start(self, models: list[kserve.Model]) -> None:
        if len(models) != 1:
            raise ValueError(f"this server serves one model, got {len(models)}")
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
        config = self._rest_server.config
        config.host = self.bind_host
        # add_middleware wraps the outside: the body limit runs first, and its 413 gets a request id.
        kserve_model_server.app.add_middleware(asgi.BodyLimitMiddleware, max_bytes=self.max_request_bytes)
        kserve_model_server.app.add_middleware(asgi.RequestIdMiddleware)
        # The HTTP server runs the lean path, which hands KServe's app everything it does not answer.
        config.app = endpoints.LeanInference(kserve_model_server.app, models[0], max_request_bytes=self.max_request_bytes)
        self.servers.append(self._rest_server.start())
        self.register_signal_handler()
        _run(self._serve(), event_loop=self.event_loop)

    async def _serve(self) -> None:
        self.setup_event_loop()  # on the running loop (KServe sets up a loop asyncio.run then replaces)
        await super()._serve()


def _run(main: Any, *, event_loop: str) -> None:
    """Run `main` on uvloop when `event_loop` (KServe's flag) is auto or uvloop and uvloop is installed."""
    if event_loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                raise
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


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
    parser.add_argument(
        "--batching",
        default=os.environ.get(BATCHING_ENV),
        help='JSON, e.g. {"enabled": true, "maxBatchSize": 64, "maxLatency": "2ms"}: adaptive batching of concurrent '
        "requests (default: $MLKUBE_BATCHING, else on with those values)",
    )
    return parser


def batching_of(raw: str | None) -> scaling.Batching:
    """The `--batching` block (the ModelDeployment's `spec.serving.batching`); ValueError naming the field."""
    if not raw:
        return scaling.Batching()
    try:
        return scaling.Batching.model_validate_json(raw)
    except pydantic.ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}" for error in e.errors())
        raise ValueError(
            f'--batching: {problems} (expected e.g. {{"enabled": true, "maxBatchSize": 64, "maxLatency": "2ms"}})'
        ) from None


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
            batching=batching_of(args.batching),
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
        event_loop=args.event_loop,
        max_request_bytes=args.max_request_bytes,
    )
    server.start([model])


if __name__ == "__main__":
    main()
