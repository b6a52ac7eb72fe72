"""Deciding a failed message's fate from its typed error, with bounded jittered back-off.

* ``PermanentError`` -> give up now (FAILED / dead-letter, with the reason).
* ``TransientError`` -> retry after an exponential back-off with jitter, counting the attempt;
  after ``max_attempts`` it becomes a permanent failure ("gave up after N attempts").
* ``UnavailableError`` -> the dependency is down: wait (back-off of the *dependency*), and do
  not count the attempt against the message.
* ``ConfigurationError`` -> like unavailable for the message (an operator must fix the
  deployment; messages must not be failed because of it), but reported loudly.

Pure functions and small state: no I/O, no sleeping here.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    TransientError,
    UnavailableError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 2.0  # seconds before the second attempt
    max_delay: float = 900.0  # the cap of one wait
    jitter: float = 0.5  # fraction of the delay that is randomised

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Wait before the attempt after ``attempts`` failed ones (equal-jitter back-off)."""
        rand = rng or random
        exponent = max(attempts - 1, 0)
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** min(exponent, 32)))
        fixed = ceiling * (1.0 - self.jitter)
        return fixed + rand.uniform(0.0, ceiling * self.jitter)


class Fate(enum.Enum):
    FAIL = "fail"  # permanent: stop trying
    RETRY = "retry"  # transient: try again later, attempt counted
    WAIT = "wait"  # dependency down or misconfigured: try again later, attempt not counted


@dataclass(frozen=True)
class Decision:
    fate: Fate
    delay: float = 0.0
    error: ConnectorError | None = None

    @property
    def counts_attempt(self) -> bool:
        return self.fate is not Fate.WAIT


def decide(
    error: BaseException,
    attempts_so_far: int,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> Decision:
    """The fate of a message whose latest attempt raised ``error``.

    ``attempts_so_far`` counts earlier failed attempts that counted (not waits).
    Unknown exceptions are treated as transient: a bug must not lose the message, and the
    attempt budget stops it from looping forever.
    """
    if isinstance(error, PermanentError):
        return Decision(Fate.FAIL, error=error)
    if isinstance(error, UnavailableError | ConfigurationError):
        return Decision(Fate.WAIT, policy.delay(1, rng), error)
    attempts = attempts_so_far + 1
    if isinstance(error, TransientError):
        wrapped: ConnectorError = error
    else:
        wrapped = TransientError(
            f"unexpected {type(error).__name__}: {error}", reason="internal_error"
        )
    if attempts >= policy.max_attempts:
        final = PermanentError(
            f"gave up after {attempts} attempts: {wrapped.message}",
            reason=wrapped.reason,
            stage=wrapped.stage,
        )
        return Decision(Fate.FAIL, error=final)
    return Decision(Fate.RETRY, policy.delay(attempts, rng), wrapped)


class DependencyBackoff:
    """Back-off for one dependency (hub, broker): grows while it stays down, resets on success."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self._policy = policy
        self._rng = rng
        self.failures = 0

    @property
    def is_down(self) -> bool:
        return self.failures > 0

    def failed(self) -> float:
        self.failures += 1
        return self._policy.delay(self.failures, self._rng)

    def succeeded(self) -> None:
        self.failures = 0
