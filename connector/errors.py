"""Typed errors that decide a message's fate.

Every stage raises one of three kinds, and only the code around the stages (retries,
settlement, dead-lettering) looks at the kind:

* ``PermanentError``: the message itself is wrong; retrying cannot help. It goes to the
  dead-letter place / FAILED state with its reason.
* ``TransientError``: this attempt failed but the next may succeed; retry with bounded,
  jittered back-off, counting the message's attempts.
* ``UnavailableError``: a dependency (hub, broker, store) is down; wait and retry without
  burning the message's attempts.

Library exceptions are translated into these at the edge where they occur. This module
must not import any other part of the connector.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of all connector errors.

    ``reason`` is a short, stable, machine-readable code (used as a metric label and in
    dead-letter headers, so it must come from a small fixed set); the message is for people
    and says what is wrong, where, and why.
    """

    kind = "error"

    def __init__(self, message: str, *, reason: str = "error", stage: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.stage = stage

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def with_stage(self, stage: str) -> ConnectorError:
        if self.stage is None:
            self.stage = stage
        return self


class PermanentError(ConnectorError):
    """The input is wrong: retrying the same input can never succeed."""

    kind = "permanent"


class TransientError(ConnectorError):
    """This attempt failed; another attempt later may succeed (counts against the budget)."""

    kind = "transient"


class UnavailableError(ConnectorError):
    """A dependency is down: wait for it, do not count the attempt against the message."""

    kind = "unavailable"


class ConfigurationError(ConnectorError):
    """The deployment is misconfigured (bad credentials, missing key, bad YAML).

    Not a message failure: operators must fix the configuration.
    """

    kind = "configuration"
