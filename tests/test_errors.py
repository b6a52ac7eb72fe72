"""The typed errors that decide a message's fate."""

from __future__ import annotations

import pytest

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    TransientError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        (PermanentError, "permanent"),
        (TransientError, "transient"),
        (UnavailableError, "unavailable"),
        (ConfigurationError, "configuration"),
    ],
)
def test_kind_reason_stage_message(error_type: type[ConnectorError], kind: str) -> None:
    error = error_type("what, where and why", reason="some_reason", stage="map")
    assert isinstance(error, ConnectorError)
    assert error.kind == kind and error.reason == "some_reason" and error.stage == "map"
    assert error.message == str(error) == "what, where and why"


def test_the_first_stage_named_is_kept() -> None:
    error = PermanentError("bad", reason="r")
    assert error.with_stage("parse").stage == "parse"
    assert error.with_stage("sign").stage == "parse"
