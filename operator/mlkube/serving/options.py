"""The router's command line: its flags, their defaults and environment variables, as `Router` options.

Owns: `parser()` (every flag of `python -m mlkube.serving.router`) and `router_options(args)`,
the keyword arguments of `router.Router` they mean, validated: a limit out of range is a
ValueError naming the flag, an unreadable token file an OSError naming the file.

Environment: `$MLKUBE_MAX_REQUEST_BYTES` is the default of `--max-request-bytes` (the model
server reads the same variable, so one setting bounds both); `$MLKUBE_FEEDBACK_TOKEN` is the
feedback token itself (a Secret key as an environment variable), the alternative to
`--feedback-token-file` (a Secret mounted as a file, which the router re-reads when it changes).

Must not: start anything or read anything but the token file.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlkube.serving import capture, feedback, gate

DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
TOKEN_ENV = "MLKUBE_FEEDBACK_TOKEN"


def parser() -> argparse.ArgumentParser:
    """Every flag of the router."""
    parser = argparse.ArgumentParser(description="mlkube traffic router")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config-map", help="NAMESPACE/NAME of the ConfigMap holding routes.json (watched)")
    source.add_argument("--routes-file", help="a routes.json file (polled every 0.5 s)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--mirror-limit", type=int, default=64, help="mirror calls in flight before mirrors are skipped")
    parser.add_argument("--index-capacity", type=int, default=feedback.DEFAULT_CAPACITY, help="request ids kept for feedback")
    parser.add_argument(
        "--response-budget",
        type=int,
        default=feedback.DEFAULT_RESPONSE_BUDGET,
        help="bytes of response bodies kept for scoring feedback (0: score none)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed the routing draws (reproducible tests)")
    limits = parser.add_argument_group("limits (413 beyond them)")
    limits.add_argument(
        "--max-request-bytes",
        type=int,
        default=int(os.environ.get("MLKUBE_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES)),
        help="largest inference request body (default: $MLKUBE_MAX_REQUEST_BYTES or 8 MiB, as the model server's)",
    )
    limits.add_argument("--feedback-max-bytes", type=int, default=gate.DEFAULT_MAX_BODY_BYTES, help="largest feedback body")
    limits.add_argument(
        "--feedback-max-truth-bytes", type=int, default=feedback.DEFAULT_MAX_TRUTH_BYTES, help="largest groundTruth (as JSON)"
    )
    access = parser.add_argument_group("feedback access")
    access.add_argument(
        "--feedback-token-file",
        default=None,
        help=f"a file holding the bearer token /v1/feedback requires (a mounted Secret; re-read when it changes); "
        f"or set ${TOKEN_ENV}. Without either, feedback needs no token",
    )
    access.add_argument(
        "--feedback-rate", type=float, default=gate.DEFAULT_RATE, help="feedback requests/s per client address (0: no limit)"
    )
    access.add_argument("--feedback-burst", type=float, default=gate.DEFAULT_BURST, help="feedback requests a client may burst")
    buffer = parser.add_argument_group("capture buffer (what a SIGKILL can lose is what it holds)")
    buffer.add_argument("--capture-flush-seconds", type=float, default=1.0, help="write the buffer at least this often")
    buffer.add_argument("--capture-batch-records", type=int, default=1000, help="write as soon as this many wait")
    buffer.add_argument("--capture-max-records", type=int, default=20_000, help="records held before new ones are dropped")
    buffer.add_argument(
        "--capture-max-bytes", type=int, default=capture.DEFAULT_MAX_BUFFERED_BYTES, help="bytes held before records are dropped"
    )
    buffer.add_argument(
        "--capture-max-body-bytes", type=int, default=capture.DEFAULT_MAX_BODY_BYTES, help="longer bodies are captured truncated"
    )
    return parser


def router_options(args: argparse.Namespace) -> dict[str, Any]:
    """`router.Router`'s keyword arguments (all but `rng`); raises ValueError or OSError naming the flag or file."""
    if args.index_capacity < 1 or args.response_budget < 0:
        raise ValueError("--index-capacity must be >= 1 and --response-budget >= 0")
    if args.max_request_bytes < 1:
        raise ValueError(f"--max-request-bytes: expected a positive number of bytes, got {args.max_request_bytes}")
    if args.feedback_max_bytes < 1 or args.feedback_max_truth_bytes < 1:
        raise ValueError("--feedback-max-bytes and --feedback-max-truth-bytes must be >= 1")
    return {
        "mirror_limit": args.mirror_limit,
        "index_capacity": args.index_capacity,
        "response_budget": args.response_budget,
        "recorder_options": {
            "flush_seconds": args.capture_flush_seconds,
            "batch_records": args.capture_batch_records,
            "max_buffered": args.capture_max_records,
            "max_buffered_bytes": args.capture_max_bytes,
            "max_body_bytes": args.capture_max_body_bytes,
        },
        "feedback_gate": gate.Gate(
            token=_token(args.feedback_token_file, os.environ.get(TOKEN_ENV)),
            limiter=gate.RateLimiter(args.feedback_rate, args.feedback_burst),
            max_body_bytes=args.feedback_max_bytes,
            max_truth_bytes=args.feedback_max_truth_bytes,
        ),
        "max_request_bytes": args.max_request_bytes,
    }


def _token(path: str | None, value: str | None) -> gate.Token | None:
    if path and value is not None:
        raise ValueError(f"give the feedback token in --feedback-token-file or ${TOKEN_ENV}, not both")
    if path:
        try:
            return gate.Token(path=path)
        except OSError as e:
            raise OSError(f"--feedback-token-file: cannot read {path}: {e.strerror or e}") from e
    return gate.Token(value=value) if value is not None else None
