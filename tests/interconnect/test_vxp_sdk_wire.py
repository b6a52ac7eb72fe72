"""Our VXP client's six requests against the official SDK's, field by field.

Each request the SDK made (../shared/interop/vxp-wire/) is rebuilt by ``VxpClient`` for the
same account, parameters and file, and compared: method and path; Content-Type, plain and
signed; body form; every ``XroadVnpt-*`` header name with its casing, in the signed order;
the signed key list and the signed JSON (keys, order, values -- the timestamp aside, which
is checked for its form: ``ddMMyyyy'T'HHmmss+SSSS``, Vietnam time, milliseconds);
``hash-file`` in the SDK's hex; the HMAC; User-Agent and ``XroadVnpt-version``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable

import httpx
import pytest

from connector.interconnect import Secret, VxpClient, VxpSettings
from connector.interconnect import vxp_wire as w
from connector.timeutil import VN_TZ
from tests.interconnect.sdk_capture import (
    SDK_SYSTEMID,
    Captured,
    captured,
    captured_requests,
    sample,
)

SECRET = Secret("wire-comparison-secret")
A, B = "000.00.31.H12", "000.00.32.H12"
LABELS = (
    "sendEdoc-edoc",
    "sendEdoc-status",
    "getReceivedEdocList",
    "getEdoc",
    "updateStatus",
    "getAgenciesList",
)
_OK = {"status": "OK", "ErrorCode": "0", "ErrorDesc": ""}
_STAMP = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})$")
_META = {"xroadvnpt-sign-header", "xroadvnpt-sign-header-key", "xroadvnpt-hash-header"}


def _answer(request: httpx.Request) -> httpx.Response:
    call = request.url.path.rsplit("/", 1)[-1]
    if call == "sendEdoc":
        return httpx.Response(200, json={**_OK, "DocId": "42"})
    if call == "getEdoc":
        return httpx.Response(200, json={**_OK, "data": base64.b64encode(b"<edXML/>").decode()})
    return httpx.Response(200, json={**_OK, "data": []})


def _ours(label: str) -> httpx.Request:
    """Our client's request for what the SDK did under ``label``."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return _answer(request)

    settings = VxpSettings(
        endpoint="https://hub.example.gov.vn", systemid=SDK_SYSTEMID, secret=SECRET
    )
    package = sample("status.edxml")  # the file the SDK sent: its hash is in the capture
    actions: dict[str, Callable[[VxpClient], object]] = {
        "sendEdoc-edoc": lambda c: c.send(package, message_type="edoc", sender=A),
        "sendEdoc-status": lambda c: c.send(package, message_type="status", sender=A, to=[B]),
        "getReceivedEdocList": lambda c: c.pending("edoc"),
        "getEdoc": lambda c: c.fetch("doc-1"),
        "updateStatus": lambda c: c.acknowledge("doc-1", ok=True),
        "getAgenciesList": lambda c: c.directory(),
    }
    with VxpClient(settings, transport=httpx.MockTransport(handler)) as client:
        actions[label](client)
    (request,) = seen
    return request


def _xroad_names(names: list[str]) -> list[str]:
    """The ``XroadVnpt-<key>`` header names (not the signature's own), in order."""
    return [n for n in names if n.lower().startswith("xroadvnpt-") and n.lower() not in _META]


def _raw_names(request: httpx.Request) -> list[str]:
    return [name.decode("latin-1") for name, _ in request.headers.raw]


def test_the_capture_holds_the_six_calls() -> None:
    assert sorted(r.label for r in captured_requests()) == sorted(LABELS)


@pytest.mark.parametrize("label", LABELS)
def test_request_line_content_type_and_body_form(label: str) -> None:
    sdk, ours = captured(label), _ours(label)
    assert ours.method == sdk.method
    assert ours.url.path == f"/{sdk.call}"
    assert ours.headers["Content-Type"] == sdk.header("Content-Type")
    assert ours.headers["XroadVnpt-Content-Type"] == sdk.header("XroadVnpt-Content-Type")
    assert int(ours.headers["Content-Length"]) == len(ours.content)
    if sdk.call == "sendEdoc":
        # The .edxml itself as the raw body (no multipart); the SDK re-joins the file's
        # lines with CRLF, and this file already has CRLF endings.
        assert ours.content == sample("status.edxml")
        assert sdk.body_starts is not None and ours.content.startswith(sdk.body_starts)
    else:
        assert sdk.body is not None or sdk.body_bytes == 0
        assert ours.content == (sdk.body or b"")  # "" on lists and agencies, "{}" otherwise


@pytest.mark.parametrize("label", LABELS)
def test_signed_headers_names_casing_order_and_values(label: str) -> None:
    sdk, ours = captured(label), _ours(label)
    sdk_names = _xroad_names([name for name, _ in sdk.headers])
    our_names = _xroad_names(_raw_names(ours))
    assert set(our_names) == set(sdk_names)  # same names, same casing (docId vs docid)
    assert ours.headers["XroadVnpt-sign-header-key"] == sdk.header("XroadVnpt-sign-header-key")
    keys = ours.headers["XroadVnpt-sign-header-key"].split(";")
    assert [n for n in our_names if n != "XroadVnpt-version"] == [f"XroadVnpt-{k}" for k in keys]
    signed = json.loads(ours.headers["XroadVnpt-sign-header"])
    assert list(signed) == list(sdk.signed)
    for key, value in sdk.signed.items():
        if key != "XroadVnpt-timestamp":
            assert signed[key] == value, key  # hash-file included: the SDK's hex
        assert ours.headers[key] == signed[key]
    # The JSON is written as the SDK writes it (compact, same escaping).
    compact = json.dumps(signed, separators=(",", ":"))
    assert ours.headers["XroadVnpt-sign-header"] == compact
    expected_mac = hmac.new(SECRET.reveal(), compact.encode(), hashlib.sha256).hexdigest()
    assert ours.headers["XroadVnpt-hash-header"] == expected_mac


@pytest.mark.parametrize("label", LABELS)
def test_user_agent_version_and_timestamp_form(label: str) -> None:
    sdk, ours = captured(label), _ours(label)
    assert ours.headers["User-Agent"] == sdk.header("User-Agent")
    assert ours.headers["XroadVnpt-version"] == sdk.header("XroadVnpt-version")
    stamp = ours.headers["XroadVnpt-timestamp"]
    sdk_stamp = sdk.header("XroadVnpt-timestamp") or ""
    assert _STAMP.match(sdk_stamp) and _STAMP.match(stamp)
    day, month, year, hour, minute, second, millis = (int(g) for g in _STAMP.match(stamp).groups())  # type: ignore[union-attr]
    written = dt.datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ)
    assert abs(dt.datetime.now(VN_TZ) - written) < dt.timedelta(minutes=2)  # Vietnam time
    assert 0 <= millis <= 999  # +SSSS is milliseconds, not a zone


def test_hash_file_is_the_sdks_hex_without_zero_padding() -> None:
    package = sample("status.edxml")
    sdk_hash = captured("sendEdoc-edoc").header("XroadVnpt-hash-file")
    assert w.sdk_file_hash(package) == sdk_hash
    assert len(sdk_hash or "") == 62 and hashlib.sha256(package).hexdigest() != sdk_hash


def test_multipart_option_keeps_the_signed_headers_but_changes_the_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return _answer(request)

    settings = VxpSettings(
        endpoint="https://hub.example.gov.vn",
        systemid=SDK_SYSTEMID,
        secret=SECRET,
        upload="multipart",
    )
    with VxpClient(settings, transport=httpx.MockTransport(handler)) as client:
        client.send(b"<edXML/>", message_type="edoc", sender=A)
    (request,) = seen
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="file_doc"' in request.content
    sdk: Captured = captured("sendEdoc-edoc")
    assert request.headers["XroadVnpt-sign-header-key"] == sdk.header("XroadVnpt-sign-header-key")
