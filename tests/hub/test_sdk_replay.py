"""The emulator is a hub the official SDK can talk to: its captured requests, replayed.

Every request the SDK made (../shared/interop/vxp-wire/) is sent to the emulator header by
header -- same names, casing, order and values, ``Expect: 100-continue`` included -- over a
plain socket client (no HTTP library adding or reordering anything). Only what must change
changes: the signature is re-made with the emulator's test secret for the capture's
account and a fresh timestamp (written in Vietnam time or in UTC, as a JVM on either zone
writes it); ``docId``/``docid`` name a delivery that exists; and since the capture
summarises package bodies, the uploads carry a package of the test's own in the SDK's
form -- its lines re-joined with CRLF, ``hash-file`` the SDK's hex of the original file.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.hub import HubEmulator
from connector.interconnect import VxpClient
from connector.interconnect import vxp_wire as w
from connector.timeutil import VN_TZ
from tests.hub.harness import SECRETS, A, B, client_for, edoc_bytes, hub_config, status_bytes
from tests.interconnect.sdk_capture import SDK_SYSTEMID, Captured, captured, sdk_body

ZONES = {"vietnam": VN_TZ, "utc": dt.UTC}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[HubEmulator, VxpClient]]:
    with HubEmulator(hub_config(tmp_path / "hub.sqlite")) as hub, client_for(hub.url, B) as b:
        yield hub, b


def _stamp(zone: dt.tzinfo) -> str:
    now = dt.datetime.now(zone)
    return f"{now:%d%m%Y}T{now:%H%M%S}+{now.microsecond // 1000:04d}"


def replay(
    hub: HubEmulator,
    request: Captured,
    *,
    zone: dt.tzinfo = VN_TZ,
    values: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, Any]:
    """Send ``request`` as captured, re-signed; ``values`` replace signed parameters."""
    assert request.header("XroadVnpt-systemid") == SDK_SYSTEMID
    signed = dict(request.signed)  # keeps the SDK's order
    signed["XroadVnpt-timestamp"] = _stamp(zone)
    for key, value in (values or {}).items():
        assert f"XroadVnpt-{key}" in signed, key
        signed[f"XroadVnpt-{key}"] = value
    sign_header = json.dumps(signed, separators=(",", ":"))
    payload = body if body is not None else (request.body or b"")
    host, port = hub.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(
            request.method, f"/{request.call}", skip_host=True, skip_accept_encoding=True
        )
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == "host":
                value = f"{host}:{port}"
            elif lowered == "content-length":
                value = str(len(payload))
            elif lowered == "xroadvnpt-sign-header":
                value = sign_header
            elif lowered == "xroadvnpt-hash-header":
                value = w.signature(SECRETS[SDK_SYSTEMID], sign_header)
            elif name in signed:
                value = signed[name]
            connection.putheader(name, value)
        connection.endheaders(payload)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _ok(status: int, answer: Any) -> None:
    assert (status, answer["status"], answer["ErrorCode"]) == (200, "OK", "0"), answer


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_each_captured_request_replayed_gets_ok(
    world: tuple[HubEmulator, VxpClient], zone: str
) -> None:
    hub, client_b = world
    tz = ZONES[zone]
    # Something waits for A (the capture's account) so that the receive calls have work.
    client_b.send(edoc_bytes(B, (A,)), message_type="edoc", sender=B)

    original = edoc_bytes(A, (B,)).replace(b"><edXML:", b">\n<edXML:")  # an LF file
    upload = sdk_body(original)
    assert upload != original and b"\r\n" in upload
    status, answer = replay(
        hub,
        captured("sendEdoc-edoc"),
        zone=tz,
        values={"hash-file": w.sdk_file_hash(original)},
        body=upload,
    )
    _ok(status, answer)
    stored = {p.doc_id: p.data for p in hub.packages()}
    assert stored[answer["DocId"]] == upload

    notice = status_bytes(A, B, document_id=f"{B},2026/11/20,1/TEST")
    status, answer = replay(
        hub,
        captured("sendEdoc-status"),
        zone=tz,
        values={"hash-file": w.sdk_file_hash(notice)},
        body=sdk_body(notice),
    )
    _ok(status, answer)
    assert [d.recipient for d in hub.inbox(B, "status")] == [B]

    status, answer = replay(hub, captured("getReceivedEdocList"), zone=tz)
    _ok(status, answer)
    (listed,) = answer["data"]
    assert listed["from"] == B

    status, answer = replay(hub, captured("getEdoc"), zone=tz, values={"docId": listed["docId"]})
    _ok(status, answer)
    assert answer["data"]

    status, answer = replay(
        hub, captured("updateStatus"), zone=tz, values={"docid": listed["docId"]}
    )
    _ok(status, answer)
    assert hub.inbox(A, "edoc") == []

    status, answer = replay(hub, captured("getAgenciesList"), zone=tz)
    _ok(status, answer)
    assert {entry["code"] for entry in answer["data"]} >= {A, B}


@pytest.mark.parametrize("form", ["sdk", "standard"])
@pytest.mark.parametrize("body_form", ["as-built", "crlf", "crlf-extra-line"])
def test_upload_accepts_both_hash_forms_and_the_sdk_line_endings(
    world: tuple[HubEmulator, VxpClient], form: str, body_form: str
) -> None:
    hub, _ = world
    original = edoc_bytes(A, (B,)).replace(b"><edXML:", b">\n<edXML:")
    body = {
        "as-built": original,
        "crlf": sdk_body(original),
        "crlf-extra-line": sdk_body(original) + b"\r\n",
    }[body_form]
    claimed = w.sdk_file_hash(original) if form == "sdk" else w.file_hash(original)
    status, answer = replay(
        hub, captured("sendEdoc-edoc"), values={"hash-file": claimed}, body=body
    )
    _ok(status, answer)


def test_the_capture_hash_matches_the_sdk_body_of_its_file() -> None:
    """The captured hash-file is the SDK hex of the sample it sent, whose lines the SDK
    re-joined (the capture's body is two bytes longer than the file)."""
    from tests.interconnect.sdk_capture import sample

    request = captured("sendEdoc-edoc")
    claimed = request.header("XroadVnpt-hash-file") or ""
    file = sample("status.edxml")
    body = sdk_body(file)
    assert request.body_starts is not None and body.startswith(request.body_starts)
    for candidate in (body, body + b"\r\n", body.replace(b"\r\n", b"\n")):
        assert w.file_hash_matches(candidate, claimed)
    assert len(body + b"\r\n") == request.body_bytes
    assert not w.file_hash_matches(
        body.replace(b"<edXML:StatusCode>01", b"<edXML:StatusCode>02"), claimed
    )


def test_a_wrong_hash_or_a_stale_timestamp_is_still_refused(
    world: tuple[HubEmulator, VxpClient],
) -> None:
    hub, _ = world
    original = edoc_bytes(A, (B,))
    status, answer = replay(
        hub,
        captured("sendEdoc-edoc"),
        values={"hash-file": w.sdk_file_hash(b"other")},
        body=original,
    )
    assert (status, answer["ErrorCode"]) == (200, "1004")
    stale = dt.timezone(dt.timedelta(hours=3))  # neither Vietnam time nor UTC
    status, answer = replay(hub, captured("getAgenciesList"), zone=stale)
    assert status == 401 and "window" in answer["ErrorDesc"]
