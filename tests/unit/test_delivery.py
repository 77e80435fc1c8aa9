"""Retries, backoff and partial batch failures (SPEC §5)."""

from __future__ import annotations

import pytest

from meshline.connectors.delivery import (
    Failure,
    PermanentError,
    RetryPolicy,
    TransientError,
    deliver_batch,
    reason,
)


def test_backoff_is_exponential_and_capped():
    p = RetryPolicy(retries=10, delay=0.2, max=1.0)
    waits = [p.backoff(n) for n in range(1, 6)]
    assert 0.18 <= waits[0] <= 0.22
    assert 0.36 <= waits[1] <= 0.44
    assert waits[4] == pytest.approx(1.0, rel=0.11)
    assert all(w <= 1.0 for w in waits)


def test_linear_backoff_and_retry_after_wins_up_to_max():
    p = RetryPolicy(policy="linear", delay=0.5, max=5.0)
    assert 1.35 <= p.backoff(3) <= 1.65
    assert p.backoff(1, retry_after=3.0) == 3.0
    assert p.backoff(1, retry_after=60.0) == 5.0


def test_call_retries_transient_errors_then_gives_up():
    sleeps: list[float] = []
    calls = []

    def flaky():
        calls.append(1)
        raise TransientError("503 Service Unavailable")

    with pytest.raises(TransientError):
        RetryPolicy(retries=2).call(flaky, sleep=sleeps.append)
    assert len(calls) == 3
    assert len(sleeps) == 2


def test_call_does_not_retry_permanent_errors():
    calls = []

    def rejected():
        calls.append(1)
        raise PermanentError("400 mapper_parsing_exception")

    with pytest.raises(PermanentError):
        RetryPolicy(retries=5).call(rejected, sleep=lambda s: None)
    assert len(calls) == 1


def test_deliver_batch_retries_only_the_failed_items():
    sent: list[list[int]] = []

    def send(items):
        sent.append(list(items))
        out = []
        for i in items:
            if i == 3:
                out.append(Failure(i, "rejected: bad document", transient=False))
            elif i % 2 == 0 and len(sent) < 3:
                out.append(Failure(i, "429 Too Many Requests", transient=True, retry_after=0.01))
        return out

    failed = deliver_batch(list(range(6)), send, RetryPolicy(retries=3), sleep=lambda s: None)
    assert failed == [(3, "rejected: bad document")]
    assert sent[0] == [0, 1, 2, 3, 4, 5]
    assert sent[1] == [0, 2, 4]
    assert sent[2] == [0, 2, 4]
    assert len(sent) == 3


def test_deliver_batch_returns_every_item_when_retries_run_out():
    def send(items):
        raise TransientError("connection refused")

    failed = deliver_batch(["a", "b"], send, RetryPolicy(retries=1), sleep=lambda s: None)
    assert [i for i, _ in failed] == ["a", "b"]
    assert all("connection refused" in r and "after 2 attempts" in r for _, r in failed)


def test_deliver_batch_whole_batch_permanent_error_is_not_retried():
    calls = []

    def send(items):
        calls.append(1)
        raise PermanentError("table does not exist")

    failed = deliver_batch([1, 2], send, RetryPolicy(retries=3), sleep=lambda s: None)
    assert len(calls) == 1
    assert [r for _, r in failed] == ["PermanentError: table does not exist"] * 2


def test_reason_is_one_bounded_line():
    r = reason(ValueError("line one\nline two " + "x" * 5000))
    assert "\n" not in r
    assert len(r) <= 1024
    assert r.startswith("ValueError: line one line two")
