"""The shared HTTP edge of the hub clients: status codes → typed errors, answers, loopback."""

from __future__ import annotations

import base64

import pytest

from connector.errors import (
    ConfigurationError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.interconnect import http_edge


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (401, ConfigurationError, "hub_auth"),
        (403, ConfigurationError, "hub_forbidden"),
        (429, UnavailableError, "hub_busy"),
        (503, UnavailableError, "hub_busy"),
        (500, UnavailableError, "hub_server_error"),
        (502, UnavailableError, "hub_server_error"),
        (408, TransientError, "hub_timeout"),
        (400, PermanentError, "hub_rejected"),
    ],
)
def test_status_codes_become_typed_errors(status: int, error: type[Exception], reason: str) -> None:
    response = http_edge.Reply(status, b"no")
    with pytest.raises(error) as caught:
        http_edge.check_status("hub h sendEdoc", response, lambda r: r.content.decode())
    assert getattr(caught.value, "reason", None) == reason
    assert str(status) in str(caught.value)


def test_success_passes() -> None:
    http_edge.check_status("hub", http_edge.Reply(200, b"{}"), lambda r: "")


def test_document_bytes() -> None:
    data = b"<edXML/>"
    answer: dict[str, object] = {"data": base64.b64encode(data).decode()}
    assert http_edge.document_bytes(answer, where="h", call="getEdoc", doc_id="1") == data
    broken_answers: list[dict[str, object]] = [{"data": ""}, {}, {"data": "###"}, {"data": "ab=c"}]
    for broken in broken_answers:
        with pytest.raises(TransientError) as caught:
            http_edge.document_bytes(broken, where="h", call="getEdoc", doc_id="1")
        assert caught.value.reason == "hub_bad_response"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("hub.example.gov.vn", False),
    ],
)
def test_loopback(host: str, expected: bool) -> None:
    assert http_edge.is_loopback(host) is expected


@pytest.mark.parametrize("wrap", ["\n", "\r\n", " ", "\t", "\n\n"])
def test_document_bytes_read_line_wrapped_base64_as_the_sdk_does(wrap: str) -> None:
    data = bytes(range(256)) * 40
    encoded = base64.b64encode(data).decode()
    wrapped = wrap.join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + wrap
    answer: dict[str, object] = {"data": wrapped}
    assert http_edge.document_bytes(answer, where="h", call="getEdoc", doc_id="1") == data
