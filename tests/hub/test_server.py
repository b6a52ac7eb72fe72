"""The emulator's HTTP surface beyond the client's happy paths: odd requests, limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connector.errors import PermanentError, TransientError
from connector.hub import HubEmulator
from connector.hub.multipart import parse_multipart
from connector.interconnect import VxpClient
from connector.interconnect import vxp_wire as w
from tests.hub.harness import (
    OUTSIDER,
    SECRETS,
    SYSTEMS,
    A,
    B,
    C,
    client_for,
    edoc_bytes,
    hub_config,
    status_bytes,
)


def _signed(
    params: list[tuple[str, str]], content_type: str = "application/json"
) -> dict[str, str]:
    return w.sign(
        params, systemid=SYSTEMS[A], secret=SECRETS[SYSTEMS[A]], content_type=content_type
    )


def test_healthz_unknown_paths_and_missing_parameters(hub: HubEmulator) -> None:
    assert httpx.get(f"{hub.url}/healthz").json() == {"status": "OK"}
    assert httpx.post(f"{hub.url}/deleteEverything").status_code == 404
    missing = httpx.post(f"{hub.url}/getReceivedEdocList", headers=_signed([]), content=b"{}")
    assert missing.status_code == 400 and "messagetype" in missing.json()["ErrorDesc"]
    bad_type = httpx.post(
        f"{hub.url}/getReceivedEdocList", headers=_signed([("messagetype", "fax")]), content=b"{}"
    )
    assert bad_type.status_code == 400
    unsigned = httpx.post(f"{hub.url}/getAgenciesList", content=b"{}")
    assert unsigned.status_code == 401 and unsigned.json()["ErrorCode"] == "401"


def test_send_without_file_part_or_multipart(hub: HubEmulator) -> None:
    params = [("from", A), ("servicetype", "eDoc"), ("messagetype", "edoc"), ("hash-file", "00")]
    headers = _signed(params, "multipart/form-data")
    no_file = httpx.post(f"{hub.url}/sendEdoc", headers=headers, files={"other": ("x", b"1")})
    assert no_file.status_code == 400 and "file_doc" in no_file.text
    # Not multipart: the raw body is the package (as the SDK sends it); "00" is not its hash.
    raw = httpx.post(f"{hub.url}/sendEdoc", headers=_signed(params), content=b"{}")
    assert raw.status_code == 200 and raw.json()["ErrorCode"] == "1004"


def test_oversized_package_is_refused_with_413(tmp_path: Path) -> None:
    config = hub_config(tmp_path / "h.sqlite", max_package_bytes=2048)
    with HubEmulator(config) as hub, client_for(hub.url, A) as client:
        with pytest.raises(PermanentError, match="413"):
            client.send(edoc_bytes(subject="x" * 200_000), message_type="edoc", sender=A)
        client.send(edoc_bytes(), message_type="edoc", sender=A)  # the connection recovers


def test_status_goes_to_the_original_sender_only(hub: HubEmulator, client_b: VxpClient) -> None:
    client_b.send(status_bytes(B, A, code="03"), message_type="status", sender=B)
    assert [d.recipient for d in hub.inbox(A, "status")] == [A]
    assert hub.inbox(B) == [] and hub.inbox(C) == []
    with pytest.raises(PermanentError, match="1005"):
        client_b.send(status_bytes(B, A, code="05"), message_type="status", sender=B, to=[C])


def test_unknown_recipients_may_be_accepted_by_configuration(tmp_path: Path) -> None:
    config = hub_config(tmp_path / "h.sqlite", accept_unknown_recipients=True)
    with HubEmulator(config) as hub, client_for(hub.url, A) as client:
        client.send(edoc_bytes(A, (B, OUTSIDER, B)), message_type="edoc", sender=A)
        assert len(hub.inbox(OUTSIDER)) == 1 and len(hub.inbox(B)) == 1  # B once


def test_introspection_records_requests(hub: HubEmulator, client_a: VxpClient) -> None:
    client_a.send(edoc_bytes(), message_type="edoc", sender=A)
    hub.inject("drop_after", call="getAgenciesList")
    with pytest.raises(TransientError):
        client_a.directory()
    records = hub.requests()
    assert [(r.call, r.systemid, r.http_status, r.fault) for r in records] == [
        ("sendEdoc", SYSTEMS[A], 200, ""),
        ("getAgenciesList", SYSTEMS[A], 0, "drop_after"),
    ]
    package = hub.packages()[0]
    assert package.sender == A and package.message_type == "edoc" and package.size > 0
    with pytest.raises(ValueError):
        hub.inject("error", call="noSuchCall")
    hub.clear_faults()


def test_parse_multipart_keeps_bytes_exact() -> None:
    payload = b"\r\n--not-the-boundary\r\n\x00\xff binary \r\n"
    body = (
        b'--XYZ\r\nContent-Disposition: form-data; name="file_doc"; filename="a.edxml"\r\n'
        b"Content-Type: application/xml\r\n\r\n" + payload + b"\r\n"
        b'--XYZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--XYZ--\r\n'
    )
    assert parse_multipart(body, b"XYZ") == {"file_doc": payload, "note": b"hello"}


def test_recall_request_from_the_original_sender_goes_to_the_recipients(
    hub: HubEmulator, client_a: VxpClient
) -> None:
    document_id = f"{A},2026/11/20,13/SNV-VP"
    client_a.send(edoc_bytes(A, (B, C), document_id=document_id), message_type="edoc", sender=A)
    recall = status_bytes(A, A, document_id=document_id, code="13")
    client_a.send(recall, message_type="status", sender=A)
    assert [d.recipient for d in hub.deliveries() if d.message_type == "status"] == [B, C]
    again = status_bytes(A, A, document_id=document_id, code="13").replace(b"09:00:00", b"09:05:00")
    client_a.send(again, message_type="status", sender=A, to=[C])
    assert len(hub.inbox(C, "status")) == 2 and len(hub.inbox(B, "status")) == 1
    unknown = status_bytes(A, A, document_id=f"{A},2026/11/20,404/X", code="13")
    with pytest.raises(PermanentError, match="1005"):
        client_a.send(unknown, message_type="status", sender=A)
