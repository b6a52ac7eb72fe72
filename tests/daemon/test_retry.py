"""Typed errors decide the fate; back-off is bounded and jittered."""

from __future__ import annotations

import random

import pytest

from connector.daemon.retry import DependencyBackoff, Fate, RetryPolicy, decide
from connector.errors import ConfigurationError, PermanentError, TransientError, UnavailableError

POLICY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, jitter=0.5)


def test_permanent_fails_at_once() -> None:
    decision = decide(PermanentError("bad package", reason="schema"), 0, POLICY)
    assert decision.fate is Fate.FAIL and decision.error is not None
    assert decision.error.reason == "schema"


@pytest.mark.parametrize("error", [UnavailableError("hub down"), ConfigurationError("bad secret")])
def test_unavailable_and_configuration_wait_without_counting(error: Exception) -> None:
    decision = decide(error, 3, POLICY)
    assert decision.fate is Fate.WAIT and not decision.counts_attempt
    assert decision.delay > 0


def test_transient_retries_then_gives_up_with_reason() -> None:
    rng = random.Random(1)
    delays = []
    for attempts in range(3):
        decision = decide(TransientError("timeout", reason="hub_timeout"), attempts, POLICY, rng)
        assert decision.fate is Fate.RETRY
        delays.append(decision.delay)
    final = decide(TransientError("timeout", reason="hub_timeout"), 3, POLICY, rng)
    assert final.fate is Fate.FAIL
    assert final.error is not None and "gave up after 4 attempts" in final.error.message
    assert final.error.reason == "hub_timeout"
    assert delays[0] < delays[2]


def test_unknown_exception_is_bounded_transient() -> None:
    decision = decide(RuntimeError("bug"), 0, POLICY)
    assert decision.fate is Fate.RETRY and decision.error is not None
    assert decision.error.reason == "internal_error"


def test_delay_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    values = {round(POLICY.delay(30, rng), 6) for _ in range(20)}
    assert all(5.0 <= v <= 10.0 for v in values)
    assert len(values) > 1


def test_dependency_backoff_grows_and_resets() -> None:
    backoff = DependencyBackoff(RetryPolicy(base_delay=1.0, max_delay=100.0, jitter=0.0))
    assert [backoff.failed() for _ in range(3)] == [1.0, 2.0, 4.0]
    assert backoff.is_down
    backoff.succeeded()
    assert not backoff.is_down and backoff.failed() == 1.0
