"""The traffic router of a ModelDeployment: an asyncio HTTP proxy in front of its versions.

Owns the request path: `POST /v1/models/{deployment}:predict|:explain` and
`/v2/models/{deployment}/infer` (and the same under `/preview/` for the blue/green preview) pick a
version with `routing`, forward to that version's InferenceService with the model name rewritten
over pooled keep-alive connections (`upstream.py`), and answer with the backend's body plus
`x-request-id` and `x-mlkube-version`. Plain inference requests are read and answered by the lean
front door (`front.py`, `answer`), every other request by the aiohttp application (`application`,
`infer`); both take the same path through `_forward`. What each request needs from the routing
table (the split's weights, backend URLs, the lean paths) is computed once per table
(`forwarding.Compiled`). After the answer is ready the router, without waiting: mirrors a
share of requests to the shadow (and a canary's requests to the stable) and measures agreement (in
micro-batches, see `mirror.py`), adds the probabilities of the answer to the version's scores when
the table asks for them (`scores.py`; a table without `scores` reads no body), offers a capture
record (serialised later, off the request path: see `capture.py`), and remembers the request id
(with a reference to the response body, for scoring the feedback: see `feedback.py`) for feedback.
A mirror's failure or slowness never touches the primary response; at most `mirror_limit` mirror
calls are in flight, beyond that they are skipped and counted. An unreachable backend is a 502.

Also: `POST /v1/feedback`, `GET /v1/models/{deployment}`, `/v2/health/live|ready`,
`/metrics` (Prometheus) and `/mlkube/stats` (JSON counters, see `stats.py`).

Abuse: an inference body over `--max-request-bytes` is a 413 naming the limit. A request id
the router has already served (ids are the client's choice) is replaced by a fresh one, so a
request can never take over another's feedback. `/v1/feedback` passes `gate.Gate` first (the
bearer token when one is configured: 401; the client's rate: 429 with Retry-After; the body
size: 413), then each item gets its own status (see `feedback.py`: one label per id, 409 for
the next).

Entry point: `python -m mlkube.serving.router (--config-map NS/NAME | --routes-file PATH)
[--port 8080] [limits, feedback access and capture buffer flags: see options.py]`, bound to
`$MLKUBE_BIND_HOST` (default 0.0.0.0).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from mlkube.api import inference_log
from mlkube.ml import errors as ml_errors
from mlkube.ml import storage
from mlkube.serving import (
    agreement,
    capture,
    feedback,
    forwarding,
    front,
    gate,
    mirror,
    options,
    routing,
    stats,
    tablesource,
    upstream,
)

log = logging.getLogger("mlkube.serving.router")

VERSION_HEADER = "x-mlkube-version"


class Router:
    """The routing state of one process: current table, client pool, counters and side channels."""

    def __init__(
        self,
        *,
        mirror_limit: int = 64,
        index_capacity: int = feedback.DEFAULT_CAPACITY,
        response_budget: int = feedback.DEFAULT_RESPONSE_BUDGET,
        timeout_seconds: float = 30.0,
        mirror_timeout_seconds: float = 10.0,
        recorder_options: dict | None = None,
        feedback_gate: gate.Gate | None = None,
        max_request_bytes: int = options.DEFAULT_MAX_REQUEST_BYTES,
        rng: random.Random | None = None,
    ):
        self.table: routing.RoutingTable | None = None
        self.compiled: forwarding.Compiled | None = None
        self.rng = rng or random.Random()
        self.stats = stats.Stats()
        self.recorder = capture.Recorder(self.stats, **(recorder_options or {}))
        self.index = feedback.RequestIndex(index_capacity, response_budget=response_budget)
        self.gate = feedback_gate or gate.Gate()
        self.max_request_bytes = max_request_bytes
        self.timeout = timeout_seconds
        self.pool = upstream.Pool()
        self.fresh_ids = feedback.RequestIds()
        self.mirrors = mirror.Mirrors(
            self._call_mirror, self.stats, limit=mirror_limit, timeout_seconds=mirror_timeout_seconds, score=self._score_mirrored
        )

    # -- table ------------------------------------------------------------------------------

    def apply_routes(self, text: str) -> None:
        """Adopt a new routing table; an invalid one is logged and counted, the old one stays."""
        try:
            table = routing.RoutingTable.parse(json.loads(text))
        except (json.JSONDecodeError, routing.RoutesError) as e:
            self.stats.table_errors += 1
            log.error("ignoring invalid routing table (keeping generation %s): %s", self.stats.generation, e)
            return
        self.table, self.compiled = table, forwarding.Compiled.of(table)
        self.stats.deployment = table.deployment
        self.stats.generation = table.generation
        cap = table.capture
        self.recorder.set_target(
            cap.uri if cap.enabled else None, namespace=table.namespace, deployment=table.deployment, endpoint=cap.endpoint
        )
        log.info("routing table generation %s: split %s", table.generation, [(t.version, t.weight, t.role) for t in table.split])

    # -- inference --------------------------------------------------------------------------

    async def infer(self, request: web.Request, *, protocol: str, verb: str) -> web.Response:
        """An inference request as aiohttp read it (the lean path hands over the unusual ones)."""
        compiled = self.compiled
        if compiled is None:
            return _error(503, "no routing table yet")
        name = request.match_info["name"]
        if name != compiled.table.deployment:
            return _error(404, f"model '{name}' not found; this router serves '{compiled.table.deployment}'")
        request_id = self._request_id(request.headers.get(forwarding.REQUEST_ID))
        choice = self._choose(compiled, request.headers, preview=request.path.startswith("/preview/"))
        if choice is None:
            return _error(404, "no preview version is deployed")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = self.max_request_bytes
            size = f"{request.content_length} bytes" if request.content_length else f"more than {limit} bytes"
            message = f"request body is {size}, over this router's limit of {limit} bytes (--max-request-bytes): send fewer rows"
            return _error(413, message)
        answered = asyncio.get_running_loop().create_future()

        def reply(*answer: Any) -> None:
            if not answered.done():  # not cancelled meanwhile (the client left)
                answered.set_result(answer)

        self._forward(compiled, choice, request_id, protocol, verb, request.headers, body, reply)
        status, payload, content_type = await answered
        return web.Response(
            body=payload,
            status=status,
            headers={"content-type": content_type, forwarding.REQUEST_ID: request_id, VERSION_HEADER: str(choice.version)},
        )

    def is_lean(self, path: str) -> bool:
        """Whether `front` may answer a POST to `path` itself (an inference path of the current table)."""
        compiled = self.compiled
        return compiled is not None and path in compiled.lean

    def answer(self, request: front.Request, reply: Callable[[front.Answer], None]) -> None:
        """An inference request on the lean path: the same routing, forwarding and side channels as `infer`."""
        compiled = self.compiled
        route = compiled.lean.get(request.path) if compiled is not None else None
        if route is None:  # the table changed since the request's head was read
            reply(_lean_error(404, f"{request.path} is not an inference path of the routing table in force"))
            return
        protocol, verb, preview = route
        request_id = self._request_id(request.headers.get(forwarding.REQUEST_ID))
        choice = self._choose(compiled, request.headers, preview=preview)

        def answered(status: int, payload: bytes, content_type: str) -> None:
            headers = (("content-type", content_type), (forwarding.REQUEST_ID, request_id), (VERSION_HEADER, str(choice.version)))
            reply(front.Answer(status, payload, headers))

        self._forward(compiled, choice, request_id, protocol, verb, request.headers, request.body, answered)

    def _request_id(self, sent: str | None) -> str:
        if not sent or sent in self.index:  # an id served before keeps its own feedback
            return self.fresh_ids.next()
        return sent

    def _choose(self, compiled: forwarding.Compiled, headers: Any, *, preview: bool) -> routing.Choice | None:
        """The version that serves a request (None: a preview request and no preview version)."""
        if preview:
            return compiled.preview
        sticky = headers.get(compiled.sticky_header) if compiled.sticky_header else None
        draw = routing.sticky_draw(compiled.table.deployment, sticky) if sticky else self.rng.random()
        return compiled.split.choose(draw)

    def _forward(
        self,
        compiled: forwarding.Compiled,
        choice: routing.Choice,
        request_id: str,
        protocol: str,
        verb: str,
        sent: Any,
        body: bytes,
        reply: Callable[[int, bytes, str], None],
    ) -> None:
        """Forward the request to `choice`'s version and `reply(status, body, content type)` with its
        answer; then, without waiting, the stats, the feedback index, the capture and the mirrors."""
        forward = forwarding.Forward.of(protocol, verb, body, sent, request_id)
        started, clock = time.time(), time.perf_counter()
        version, timeout = choice.version, self.timeout

        def done(outcome: upstream.Outcome) -> None:
            status, payload, content_type = _result(compiled, version, outcome, timeout)
            reply(status or 502, payload, content_type)
            self._after(compiled, choice, request_id, forward, started, (time.perf_counter() - clock) * 1000.0, status, payload)

        url = compiled.urls[(version, protocol, verb)]
        self.pool.send("POST", url, body, forward.header_lines(), timeout, done)

    def _after(
        self,
        compiled: forwarding.Compiled,
        choice: routing.Choice,
        request_id: str,
        forward: forwarding.Forward,
        started: float,
        latency_ms: float,
        status: int,
        payload: bytes,
    ) -> None:
        """The side channels of an answered request: stats, scores, feedback index, capture, mirrors."""
        table, verb = compiled.table, forward.verb
        self.stats.record(choice.version, choice.role, status=status, latency_ms=latency_ms)
        answered = status == 200 and verb == "predict"
        if answered and choice.version in compiled.scored:
            self.stats.record_scores(choice.version, payload)
        # A reference to the body, parsed only if feedback for this id arrives (feedback.score).
        self.index.remember(request_id, feedback.Served(choice.version, choice.role, started, payload if answered else None))
        if compiled.capture_rate and self.rng.random() < compiled.capture_rate:
            self.recorder.offer(
                {
                    "_ts": started,
                    "requestId": request_id,
                    "namespace": table.namespace,
                    "deployment": table.deployment,
                    "project": table.project,
                    "version": choice.version,
                    "role": choice.role,
                    "protocol": forward.protocol,
                    "verb": verb,
                    "status": status or 502,
                    "latencyMs": round(latency_ms, 3),
                    "request": forward.body,
                    "response": payload,
                }
            )
        if compiled.mirrored and answered and choice.role != "preview":
            self._mirror_if_sampled(table, choice, forward, payload)

    def _mirror_if_sampled(
        self, table: routing.RoutingTable, choice: routing.Choice, forward: forwarding.Forward, primary: bytes
    ) -> None:
        shadow, compare = table.shadow, table.compare
        if shadow is not None and routing.is_mirrored(shadow, draw=self.rng.random()):
            copy = mirror.Copy(forward.protocol, forward.body, forward.headers, primary)
            self.mirrors.offer(mirror.Target(shadow.version, "shadow", judged=shadow.version), copy)
        if compare is not None and choice.version == compare.version and routing.is_mirrored(compare, draw=self.rng.random()):
            copy = mirror.Copy(forward.protocol, forward.body, forward.headers, primary)
            self.mirrors.offer(mirror.Target(table.stable_version, "compare", judged=compare.version), copy)

    def _score_mirrored(self, version: int, body: bytes) -> None:
        """A shadow's answer to a mirrored copy adds to its scores when the table asks for them."""
        compiled = self.compiled
        if compiled is not None and version in compiled.scored:
            self.stats.record_scores(version, body)

    async def _call_mirror(
        self, version: int, protocol: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, bytes]:
        compiled = self.compiled
        if compiled is None or version not in compiled.table.backends:
            return 0, b""  # the version left the table while its copies waited
        url = compiled.urls[(version, protocol, "predict")]
        try:
            outcome: upstream.Outcome = await self.pool.request("POST", url, body=body, headers=headers, timeout=timeout)
        except (upstream.UpstreamError, TimeoutError) as failure:
            outcome = failure
        status, payload, _ = _result(compiled, version, outcome, timeout)
        return status, payload

    # -- feedback ---------------------------------------------------------------------------

    async def feedback(self, request: web.Request) -> web.Response:
        refused = self.gate.refusal(request, now=time.monotonic())
        if refused is not None:
            counter, answer = refused
            self.stats.feedback[counter] += 1
            return answer
        table = self.table
        if table is None or not table.capture.uri:
            return _error(503, "feedback needs capture.uri in the routing table; none is configured")
        try:
            doc = orjson.loads(await self.gate.body(request))
            items, is_batch = feedback.items_of(doc)
        except gate.TooLarge as e:
            self.stats.feedback["tooLarge"] += 1
            return self.gate.too_large(e)
        except orjson.JSONDecodeError as e:
            return _error(400, f"feedback: body is not JSON: {e}")
        except feedback.FeedbackError as e:
            return _error(400, str(e))
        records, results = feedback.judge(items, self.index, now=time.time(), max_truth_bytes=self.gate.max_truth_bytes)
        claimed = [r.request_id for r in records]
        self.index.claim(claimed)  # before the await: a concurrent body naming these ids gets 409
        if records:
            try:
                await asyncio.to_thread(
                    capture.write_records,
                    table.capture.uri,
                    inference_log.FEEDBACK,
                    records,
                    namespace=table.namespace,
                    deployment=table.deployment,
                    options=storage.Options(endpoint=table.capture.endpoint),
                )
            except (ml_errors.MLError, OSError) as e:
                self.index.release(claimed)
                return _error(503, f"feedback could not be stored, retry later: {e}")
        counts = collections.Counter(r["status"] for r in results)
        self.stats.feedback["accepted"] += len(records)
        self.stats.feedback["unknown"] += counts[404]
        self.stats.feedback["conflicts"] += counts[409]
        self.stats.feedback["tooLarge"] += counts[413]
        scored, unscored = feedback.score(records, self.index)  # after storing: a 503 is retried, not lost
        watched = self.compiled.scored if self.compiled is not None else frozenset()
        for labeled in scored:
            correct, error = agreement.outcome(labeled.prediction, labeled.truth)
            self.stats.record_label(labeled.version, correct=correct, error=error)
            if labeled.version in watched and labeled.response is not None:
                self.stats.record_scored_label(labeled.version, labeled.response, labeled.truth)
        self.stats.feedback["unscored"] += unscored
        if not is_batch:
            return web.json_response(results[0], status=results[0]["status"])
        all_ok = len(records) == len(results)
        return web.json_response({"accepted": len(records), "results": results}, status=200 if all_ok else 207)

    # -- health and measurements ------------------------------------------------------------

    async def ready(self, request: web.Request) -> web.Response:
        if self.table is None:
            return web.json_response({"ready": False}, status=503)
        return web.json_response({"ready": True})

    async def model_ready(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.table is None or name != self.table.deployment:
            return _error(404, f"model '{name}' not found")
        return web.json_response({"name": name, "ready": True})

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def stats_json(self, request: web.Request) -> web.Response:
        doc = self.stats.as_json()
        doc["requestIndex"] = {
            "size": len(self.index),
            "capacity": self.index.capacity,
            "keptBytes": self.index.kept_bytes,
            "responseBudget": self.index.response_budget,
        }
        recorder = self.recorder
        doc["captureBuffer"] = {
            "records": recorder.held,
            "bytes": recorder.held_bytes,
            "maxRecords": recorder.max_buffered,
            "maxBytes": recorder.max_buffered_bytes,
            "maxBodyBytes": recorder.max_body_bytes,
        }
        return web.json_response(doc)

    async def metrics(self, request: web.Request) -> web.Response:
        text, content_type = stats.prometheus_text(self.stats)
        return web.Response(body=text, headers={"content-type": content_type})

    async def open(self, app: web.Application) -> None:
        self.recorder.start()

    async def close(self, app: web.Application) -> None:
        await self.mirrors.close()
        await self.recorder.close()
        self.pool.close()


def _result(compiled: forwarding.Compiled, version: int, outcome: upstream.Outcome, timeout: float) -> tuple[int, bytes, str]:
    """(status, body, content type) of one backend call; status 0 when it could not be made."""
    if isinstance(outcome, upstream.Response):
        return outcome.status, outcome.body, outcome.headers.get("content-type", "application/json")
    if isinstance(outcome, TimeoutError):
        backend = compiled.table.backends[version]
        return 0, _error_body(f"version {version} at {backend.url} did not answer within {timeout:g}s"), "application/json"
    return 0, _error_body(f"version {version} is unreachable: {outcome}"), "application/json"


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _lean_error(status: int, message: str) -> front.Answer:
    """`_error` as the lean path writes it (aiohttp's json_response: json.dumps, charset)."""
    return front.Answer(status, json.dumps({"error": message}).encode(), (("Content-Type", "application/json; charset=utf-8"),))


def application(router: Router) -> web.Application:
    """The aiohttp app serving `router`'s endpoints."""
    app = web.Application(client_max_size=router.max_request_bytes)
    name = "{name:[^/:]+}"
    for prefix in ("", "/preview"):
        app.router.add_post(f"{prefix}/v1/models/{name}:predict", _infer_handler(router, "v1", "predict"))
        app.router.add_post(f"{prefix}/v1/models/{name}:explain", _infer_handler(router, "v1", "explain"))
        app.router.add_post(f"{prefix}/v2/models/{name}/infer", _infer_handler(router, "v2", "predict"))
    app.router.add_post("/v1/feedback", router.feedback)
    app.router.add_get(f"/v1/models/{name}", router.model_ready)
    app.router.add_get(f"/v2/models/{name}/ready", router.model_ready)
    app.router.add_get("/v2/health/live", router.live)
    app.router.add_get("/v2/health/ready", router.ready)
    app.router.add_get("/metrics", router.metrics)
    app.router.add_get("/mlkube/stats", router.stats_json)
    app.on_startup.append(router.open)
    app.on_cleanup.append(router.close)
    return app


def _infer_handler(router: Router, protocol: str, verb: str):
    async def handle(request: web.Request) -> web.Response:
        return await router.infer(request, protocol=protocol, verb=verb)

    return handle


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = options.parser()
    args = parser.parse_args(argv)
    try:
        router = Router(**options.router_options(args), rng=random.Random(args.seed))
    except (ValueError, OSError) as e:  # a limit out of range, an unreadable token file
        parser.error(str(e))
    app = application(router)
    if args.config_map:
        namespace, _, name = args.config_map.partition("/")
        if not namespace or not name:
            parser.error("--config-map: expected NAMESPACE/NAME")
        table_source: Any = tablesource.ConfigMapSource(namespace, name, router.apply_routes)
    else:
        table_source = tablesource.FileSource(args.routes_file, router.apply_routes)

    async def start_source(app: web.Application) -> None:
        table_source.start(asyncio.get_running_loop())

    async def stop_source(app: web.Application) -> None:
        table_source.stop()

    app.on_startup.append(start_source)
    app.on_cleanup.insert(0, stop_source)
    try:
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    host = os.environ.get("MLKUBE_BIND_HOST", "0.0.0.0")
    asyncio.run(
        front.serve(
            app, answer=router.answer, is_lean=router.is_lean, max_body_bytes=router.max_request_bytes, host=host, port=args.port
        )
    )


if __name__ == "__main__":
    main()
