"""The feedback gate's parts: the token bucket per client, the bearer token (and its rotation), the router's flags."""

from __future__ import annotations

import pytest

from mlkube.serving import gate, options


def test_a_client_over_its_rate_waits_and_others_are_not_affected():
    limiter = gate.RateLimiter(rate=2.0, burst=3)
    assert [limiter.wait("10.0.0.1", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait("10.0.0.1", now=100.0) == pytest.approx(0.5)  # one token comes back every 1/rate s
    assert limiter.wait("10.0.0.2", now=100.0) == 0.0
    assert limiter.wait("10.0.0.1", now=100.5) == 0.0
    assert limiter.wait("10.0.0.1", now=100.5) == pytest.approx(0.5)
    assert [limiter.wait("10.0.0.1", now=1000.0) for _ in range(4)][-1] > 0, "a long pause refills only up to the burst"


def test_the_rate_limiter_keeps_at_most_max_clients_buckets_and_zero_turns_it_off():
    limiter = gate.RateLimiter(rate=1.0, burst=1, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.wait(client, now=0.0)
    assert len(limiter) == 2 and limiter.wait("a", now=0.0) == 0.0  # forgotten: a full bucket again
    off = gate.RateLimiter(rate=0, burst=0)
    assert all(off.wait("a", now=0.0) == 0.0 for _ in range(1000))
    with pytest.raises(ValueError, match="burst >= 1"):
        gate.RateLimiter(rate=1.0, burst=0)


def test_the_token_is_compared_exactly_and_only_as_a_bearer_token():
    token = gate.Token(value="s3cret\n")
    assert token.accepts("Bearer s3cret") and token.accepts("bearer s3cret")
    assert not any(token.accepts(h) for h in (None, "", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"))
    with pytest.raises(ValueError, match="empty"):
        gate.Token(value="  ")


def test_a_token_file_is_re_read_when_it_changes_and_kept_when_it_breaks(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    token = gate.Token(path=str(path))
    assert token.accepts("Bearer first")
    path.write_text("second-token\n")  # rotated (another size, so the change is seen whatever the clock)
    assert token.accepts("Bearer second-token") and not token.accepts("Bearer first")
    path.unlink()
    assert token.accepts("Bearer second-token"), "an unreadable file keeps the last token: fail closed, not open"
    with pytest.raises(OSError):
        gate.Token(path=str(tmp_path / "missing"))


def args(*extra: str):
    return options.parser().parse_args(["--routes-file", "routes.json", *extra])


def test_router_flags_become_router_options(tmp_path, monkeypatch):
    monkeypatch.delenv(options.TOKEN_ENV, raising=False)
    (tmp_path / "token").write_text("t0ken")
    built = options.router_options(
        args("--max-request-bytes", "1000", "--feedback-token-file", str(tmp_path / "token"), "--capture-max-body-bytes", "77")
    )
    assert built["max_request_bytes"] == 1000 and built["recorder_options"]["max_body_bytes"] == 77
    assert built["feedback_gate"].token.accepts("Bearer t0ken")
    assert options.router_options(args())["feedback_gate"].token is None
    monkeypatch.setenv(options.TOKEN_ENV, "from-env")
    assert options.router_options(args())["feedback_gate"].token.accepts("Bearer from-env")


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--max-request-bytes", "0"), "--max-request-bytes: expected a positive number of bytes, got 0"),
        (("--feedback-max-bytes", "0"), "--feedback-max-bytes"),
        (("--feedback-token-file", "/nonexistent/token"), "--feedback-token-file: cannot read /nonexistent/token"),
    ],
)
def test_bad_router_flags_are_refused_naming_the_flag(extra, message, monkeypatch):
    monkeypatch.delenv(options.TOKEN_ENV, raising=False)
    with pytest.raises((ValueError, OSError), match=message):
        options.router_options(args(*extra))


def test_a_token_in_both_the_file_and_the_environment_is_refused(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("a")
    monkeypatch.setenv(options.TOKEN_ENV, "b")
    with pytest.raises(ValueError, match="not both"):
        options.router_options(args("--feedback-token-file", str(tmp_path / "token")))
