"""The VXP client against the hub emulator: round trips, signing, error classification."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connector.errors import (
    ConfigurationError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.hub import HubEmulator, RefusalRule
from connector.interconnect import HubTransport, VxpClient, VxpSettings
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


def test_client_is_a_hub_transport(client_a: VxpClient) -> None:
    assert isinstance(client_a, HubTransport)


def test_edoc_round_trip_and_status_back_to_the_sender(
    hub: HubEmulator, client_a: VxpClient, client_b: VxpClient
) -> None:
    package = edoc_bytes(A, (B, C), document_id=f"{A},2026/11/20,7/SNV-VP")
    doc_id = client_a.send(package, message_type="edoc", sender=A)

    listed = client_b.pending("edoc")
    assert [(p.sender, p.recipient, p.message_type) for p in listed] == [(A, B, "edoc")]
    assert client_b.fetch(listed[0].doc_id) == package
    assert client_b.pending("status") == []
    client_b.acknowledge(listed[0].doc_id, ok=True)
    assert client_b.pending("edoc") == []
    assert len(hub.inbox(C, "edoc")) == 1  # C has not fetched yet

    sent = {s.recipient: s for s in client_a.sent("edoc")}
    assert {s.sender_doc_id for s in sent.values()} == {doc_id}
    assert sent[B].receive_status == "done" and sent[C].receive_status == "pending"

    notice = status_bytes(B, A, document_id=f"{A},2026/11/20,7/SNV-VP", code="01")
    client_b.send(notice, message_type="status", sender=B)
    assert client_a.pending("edoc") == []
    statuses = client_a.pending("status")
    assert [(s.sender, s.message_type) for s in statuses] == [(B, "status")]
    assert client_a.fetch(statuses[0].doc_id) == notice
    client_a.acknowledge(statuses[0].doc_id, ok=False)  # "fail" also removes it
    assert client_a.pending("status") == []
    assert [d.state for d in hub.deliveries(recipient=A)] == ["fail"]


def test_urgent_packages_are_listed_first(client_a: VxpClient, client_b: VxpClient) -> None:
    normal = client_a.send(edoc_bytes(priority=0), message_type="edoc", sender=A)
    flash = client_a.send(edoc_bytes(priority=3), message_type="edoc", sender=A)
    assert normal != flash
    listed = client_b.pending("edoc")
    assert len(listed) == 2
    first = client_b.fetch(listed[0].doc_id)
    assert b"<edXML:Priority>3<" in first


def test_to_parameter_narrows_delivery(hub: HubEmulator, client_a: VxpClient) -> None:
    client_a.send(edoc_bytes(A, (B, C)), message_type="edoc", sender=A, to=[C])
    assert hub.inbox(B) == [] and len(hub.inbox(C)) == 1
    with pytest.raises(PermanentError, match="only narrow") as refused:
        client_a.send(edoc_bytes(A, (B,)), message_type="edoc", sender=A, to=[C])
    assert refused.value.reason == "hub_refused"


def test_directory(client_a: VxpClient) -> None:
    agencies = {a.organ_id: a for a in client_a.directory()}
    assert set(agencies) == {A, B, C}
    assert agencies[B].parent_id == A and agencies[A].mail == "snv@example.gov.vn"


def test_resend_of_identical_bytes_returns_the_same_doc_id(
    hub: HubEmulator, client_a: VxpClient
) -> None:
    package = edoc_bytes()
    first = client_a.send(package, message_type="edoc", sender=A)
    assert client_a.send(package, message_type="edoc", sender=A) == first
    assert len(hub.inbox(B)) == 1 and len(hub.packages()) == 1


# -- refusals that are the message's fault ------------------------------------------------


@pytest.mark.parametrize(
    ("package", "kwargs", "match"),
    [
        (b"not xml at all", {}, "ErrorCode 1001"),
        (edoc_bytes(A, (OUTSIDER,)), {}, "not in the directory"),
        (edoc_bytes(C, (B,)), {}, "ErrorCode 1003"),
        (status_bytes(C, B), {"message_type": "status"}, "ErrorCode 1003"),
        (edoc_bytes(), {"message_type": "status"}, "ErrorCode 1002"),
    ],
)
def test_bad_packages_are_permanent_errors(
    client_a: VxpClient, package: bytes, kwargs: dict[str, str], match: str
) -> None:
    args = {"message_type": "edoc", "sender": A, **kwargs}
    with pytest.raises(PermanentError, match=match) as refused:
        client_a.send(package, **args)  # type: ignore[arg-type]
    assert type(refused.value) is PermanentError and refused.value.reason == "hub_refused"


def test_refusal_rule_gives_the_hub_description(hub: HubEmulator, client_a: VxpClient) -> None:
    document_id = f"{A},2026/11/20,99/REFUSED"
    hub.set_faults(
        refuse=[RefusalRule(document_id=document_id, error_code="77", description="Trùng số")]
    )
    with pytest.raises(PermanentError, match="ErrorCode 77: Trùng số"):
        client_a.send(edoc_bytes(document_id=document_id), message_type="edoc", sender=A)
    client_a.send(edoc_bytes(), message_type="edoc", sender=A)  # others still pass


def test_unknown_doc_id_is_permanent(client_b: VxpClient) -> None:
    with pytest.raises(PermanentError, match="1404"):
        client_b.fetch("no-such-id")
    with pytest.raises(PermanentError, match="1404"):
        client_b.acknowledge("no-such-id", ok=True)


def test_a_recipient_cannot_read_another_agencys_delivery(
    hub: HubEmulator, client_a: VxpClient
) -> None:
    client_a.send(edoc_bytes(A, (B,)), message_type="edoc", sender=A)
    delivery = hub.inbox(B)[0].delivery_id
    with client_for(hub.url, C) as client_c, pytest.raises(PermanentError, match="1404"):
        client_c.fetch(delivery)


# -- authentication: configuration problems, not message failures ------------------------


class _Tampering(httpx.HTTPTransport):
    def __init__(self, tamper: Callable[[httpx.Request], None]) -> None:
        super().__init__()
        self._tamper = tamper

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._tamper(request)
        return super().handle_request(request)


def _client_with(hub: HubEmulator, tamper: Callable[[httpx.Request], None]) -> VxpClient:
    settings = VxpSettings(endpoint=hub.url, systemid=SYSTEMS[A], secret=SECRETS[SYSTEMS[A]])
    return VxpClient(settings, transport=_Tampering(tamper))


def _restamp(request: httpx.Request) -> None:
    """Re-sign with the right secret but a timestamp an hour old (a replay)."""
    import datetime as dt

    from connector.timeutil import VN_TZ

    keys = request.headers["XroadVnpt-sign-header-key"].split(";")
    common = ("timestamp", "systemid", "Content-Type")
    params = [(k, request.headers[f"XroadVnpt-{k}"]) for k in keys if k not in common]
    fresh = w.sign(
        params,
        systemid=SYSTEMS[A],
        secret=SECRETS[SYSTEMS[A]],
        content_type=request.headers["XroadVnpt-Content-Type"],
        now=dt.datetime.now(VN_TZ) - dt.timedelta(hours=1),
        call="getReceivedEdocList",
    )
    request.headers.update(fresh)


def _alter_param(request: httpx.Request) -> None:
    request.headers["XroadVnpt-messagetype"] = "status"


def _alter_signed_json(request: httpx.Request) -> None:
    signed = request.headers["XroadVnpt-sign-header"]
    request.headers["XroadVnpt-sign-header"] = signed.replace('"edoc"', '"status"')
    request.headers["XroadVnpt-messagetype"] = "status"


@pytest.mark.parametrize(
    "tamper",
    [_restamp, _alter_param, _alter_signed_json],
    ids=["stale-timestamp", "altered-header", "altered-signed-json"],
)
def test_tampered_requests_get_401_and_configuration_error(
    hub: HubEmulator, tamper: Callable[[httpx.Request], None]
) -> None:
    with _client_with(hub, tamper) as client, pytest.raises(ConfigurationError) as refused:
        client.pending("edoc")
    assert refused.value.reason == "hub_auth"
    assert hub.requests("getReceivedEdocList")[-1].http_status == 401


def test_wrong_secret_is_a_configuration_error_and_never_leaks(
    hub: HubEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    from connector.interconnect import Secret

    caplog.set_level(logging.DEBUG)
    wrong = Secret("wrong-secret-value-123")
    settings = VxpSettings(endpoint=hub.url, systemid=SYSTEMS[A], secret=wrong)
    with VxpClient(settings) as client, pytest.raises(ConfigurationError) as refused:
        client.send(edoc_bytes(), message_type="edoc", sender=A)
    assert refused.value.reason == "hub_auth" and "401" in str(refused.value)
    assert hub.packages() == []
    for text in (str(refused.value), repr(refused.value), caplog.text):
        assert "wrong-secret-value-123" not in text
        for real in SECRETS.values():
            assert real.reveal().decode() not in text


def test_sending_as_another_agency_is_forbidden(hub: HubEmulator, client_b: VxpClient) -> None:
    with pytest.raises(ConfigurationError) as refused:
        client_b.send(edoc_bytes(A, (B,)), message_type="edoc", sender=A)
    assert refused.value.reason == "hub_forbidden"
    assert hub.packages() == []


# -- faults -------------------------------------------------------------------------------


def test_5xx_and_429_are_unavailable(hub: HubEmulator, client_a: VxpClient) -> None:
    hub.inject("error", call="sendEdoc", status=503)
    with pytest.raises(UnavailableError) as busy:
        client_a.send(edoc_bytes(), message_type="edoc", sender=A)
    assert busy.value.reason == "hub_busy"
    hub.inject("error", status=500)
    with pytest.raises(UnavailableError) as broken:
        client_a.pending("edoc")
    assert broken.value.reason == "hub_server_error"
    hub.inject("error", status=429)
    with pytest.raises(UnavailableError):
        client_a.directory()
    assert hub.packages() == []
    client_a.send(edoc_bytes(), message_type="edoc", sender=A)  # the hub is back


def test_unreachable_hub_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}", A)
    with client, pytest.raises(UnavailableError) as down:
        client.pending("edoc")
    assert down.value.reason == "hub_unreachable"


def test_drop_after_processing_is_transient_and_the_resend_is_recognised(
    hub: HubEmulator, client_a: VxpClient
) -> None:
    package = edoc_bytes()
    hub.inject("drop_after", call="sendEdoc")
    with pytest.raises(TransientError) as lost:
        client_a.send(package, message_type="edoc", sender=A)
    assert lost.value.reason == "hub_connection_lost"
    stored = hub.packages()
    assert len(stored) == 1  # the hub did take it
    assert client_a.send(package, message_type="edoc", sender=A) == stored[0].doc_id
    assert len(hub.inbox(B)) == 1


def test_drop_before_processing_is_transient_and_nothing_is_stored(
    hub: HubEmulator, client_a: VxpClient
) -> None:
    package = edoc_bytes()
    hub.inject("drop_before", call="sendEdoc")
    with pytest.raises(TransientError):
        client_a.send(package, message_type="edoc", sender=A)
    assert hub.packages() == []
    client_a.send(package, message_type="edoc", sender=A)
    assert len(hub.inbox(B)) == 1


def test_slow_hub_read_timeout_is_transient(hub: HubEmulator) -> None:
    package = edoc_bytes()
    hub.inject(None, call="sendEdoc", delay_s=0.6)
    with client_for(hub.url, A, read_timeout=0.2) as client:
        with pytest.raises(TransientError) as slow:
            client.send(package, message_type="edoc", sender=A)
        assert slow.value.reason == "hub_timeout"
        doc_id = client.send(package, message_type="edoc", sender=A)
    import time

    time.sleep(0.6)  # let the slow request finish on the hub
    assert [p.doc_id for p in hub.packages()] == [doc_id]
    assert len(hub.inbox(B)) == 1


def test_duplicate_listing_and_redelivery(hub: HubEmulator, client_a: VxpClient) -> None:
    client_a.send(edoc_bytes(), message_type="edoc", sender=A)
    with client_for(hub.url, B) as client_b:
        hub.set_faults(duplicate_list_rate=1.0)
        listed = client_b.pending("edoc")
        assert len(listed) == 2 and listed[0].doc_id == listed[1].doc_id
        hub.set_faults(duplicate_list_rate=0.0, duplicate_delivery_rate=1.0)
        client_b.acknowledge(listed[0].doc_id, ok=True)
        client_b.acknowledge(listed[0].doc_id, ok=True)  # repeated ack is harmless
        again = client_b.pending("edoc")
        assert len(again) == 1 and again[0].doc_id != listed[0].doc_id
        assert client_b.fetch(again[0].doc_id) == client_b.fetch(listed[0].doc_id)


def test_random_faults_by_rate_are_seeded(hub: HubEmulator, client_a: VxpClient) -> None:
    hub.set_faults(error_rate=0.5, seed=7, calls=["getAgenciesList"])
    outcomes = []
    for _ in range(20):
        try:
            client_a.directory()
            outcomes.append("ok")
        except UnavailableError:
            outcomes.append("503")
    assert 3 <= outcomes.count("503") <= 17
    client_a.pending("edoc")  # other calls are not affected


# -- durability ---------------------------------------------------------------------------


def test_state_survives_an_emulator_restart(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    package = edoc_bytes(A, (B, C))
    with HubEmulator(hub_config(db)) as first, client_for(first.url, A) as client:
        doc_id = client.send(package, message_type="edoc", sender=A)
    with HubEmulator(hub_config(db)) as second, client_for(second.url, B) as client:
        listed = client.pending("edoc")
        assert len(listed) == 1 and client.fetch(listed[0].doc_id) == package
        client.acknowledge(listed[0].doc_id, ok=True)
        with client_for(second.url, A) as sender:
            assert sender.send(package, message_type="edoc", sender=A) == doc_id
    with HubEmulator(hub_config(db)) as third:
        assert third.inbox(B) == [] and len(third.inbox(C)) == 1


def test_client_survives_a_restart_on_the_same_port(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite"
    first = HubEmulator(hub_config(db))
    url = first.start()
    port = int(url.rsplit(":", 1)[1])
    with client_for(url, A) as client:
        client.send(edoc_bytes(), message_type="edoc", sender=A)  # leaves a pooled connection
        first.stop()
        with pytest.raises((UnavailableError, TransientError)):
            client.pending("edoc")
        with HubEmulator(hub_config(db, port=port)):
            assert client.pending("edoc") == []
            client.send(edoc_bytes(), message_type="edoc", sender=A)


# -- wire details -------------------------------------------------------------------------


def _raw_send(hub: HubEmulator, package: bytes, hash_file: str) -> httpx.Response:
    headers = w.sign(
        [
            ("from", A),
            ("servicetype", "eDoc"),
            ("messagetype", "edoc"),
            ("hash-file", hash_file),
        ],
        systemid=SYSTEMS[A],
        secret=SECRETS[SYSTEMS[A]],
        content_type="multipart/form-data",
    )
    files = {"file_doc": ("x.edxml", package, "application/xml")}
    return httpx.post(f"{hub.url}/sendEdoc", headers=headers, files=files)


def test_hash_file_sdk_quirk_is_accepted_and_a_wrong_hash_refused(hub: HubEmulator) -> None:
    package = edoc_bytes()
    quirky = _raw_send(hub, package, w.sdk_file_hash(package)).json()
    assert quirky["status"] == "OK" and quirky["ErrorCode"] == "0"
    wrong = _raw_send(hub, edoc_bytes(), w.file_hash(b"something else")).json()
    assert wrong["ErrorCode"] == "1004"


def test_request_carries_the_sdk_headers(hub: HubEmulator) -> None:
    seen: list[httpx.Request] = []
    with _client_with(hub, seen.append) as client:
        client.send(edoc_bytes(), message_type="edoc", sender=A, to=[B])
    request = seen[0]
    assert request.headers["XroadVnpt-version"] == "3.0.201608"
    assert request.headers["User-Agent"] == "JAVASDKAgent/1.0.0 XRoad/VPCP"
    assert request.headers["XroadVnpt-to"] == f'["{B}"]'
    assert request.headers["XroadVnpt-sign-header-key"] == (
        "systemid;servicetype;messagetype;hash-file;from;to;timestamp;Content-Type"
    )
    assert request.headers["Content-Type"] == "application/octet-stream"


def test_multipart_upload_stays_available(hub: HubEmulator) -> None:
    seen: list[httpx.Request] = []
    settings = VxpSettings(
        endpoint=hub.url, systemid=SYSTEMS[A], secret=SECRETS[SYSTEMS[A]], upload="multipart"
    )
    package = edoc_bytes()
    with VxpClient(settings, transport=_Tampering(seen.append)) as client:
        doc_id = client.send(package, message_type="edoc", sender=A)
    assert seen[0].headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert seen[0].headers["XroadVnpt-Content-Type"] == "multipart/form-data"
    assert [p.data for p in hub.packages() if p.doc_id == doc_id] == [package]


# -- classification of answers, without a hub --------------------------------------------


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> VxpClient:
    settings = VxpSettings(
        endpoint="https://hub.example.gov.vn/vxp", systemid="s", secret=SECRETS[SYSTEMS[A]]
    )
    return VxpClient(settings, transport=httpx.MockTransport(handler))


def _raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "kind", "reason"),
    [
        (lambda r: httpx.Response(502), UnavailableError, "hub_server_error"),
        (lambda r: httpx.Response(503, headers={"Retry-After": "5"}), UnavailableError, "hub_busy"),
        # A bare 404 is no hub's answer: the endpoint is wrong, not this package.
        (lambda r: httpx.Response(404), ConfigurationError, "hub_endpoint"),
        (lambda r: httpx.Response(413, json={"ErrorDesc": "big"}), PermanentError, "hub_rejected"),
        (lambda r: httpx.Response(302, headers={"Location": "/x"}), ConfigurationError, None),
        (lambda r: httpx.Response(200, text="<html>proxy</html>"), TransientError, None),
        (
            lambda r: httpx.Response(200, json={"status": "FAIL", "ErrorCode": "5"}),
            PermanentError,
            "hub_refused",
        ),
        (
            lambda r: httpx.Response(200, json={"status": "OK", "ErrorCode": "3"}),
            PermanentError,
            "hub_refused",
        ),
        (
            lambda r: httpx.Response(200, json={"status": "OK", "ErrorCode": "0"}),
            TransientError,
            None,
        ),
        (_raising(httpx.ConnectError("refused")), UnavailableError, "hub_unreachable"),
        (_raising(httpx.ConnectTimeout("slow")), UnavailableError, "hub_unreachable"),
        (_raising(httpx.ReadTimeout("slow")), TransientError, "hub_timeout"),
        (_raising(httpx.RemoteProtocolError("eof")), TransientError, "hub_connection_lost"),
        (_raising(httpx.ReadError("reset")), TransientError, "hub_connection_lost"),
    ],
)
def test_answers_are_classified_at_the_edge(
    handler: Callable[[httpx.Request], httpx.Response],
    kind: type[Exception],
    reason: str | None,
) -> None:
    with _mock_client(handler) as client, pytest.raises(kind) as caught:
        client.send(b"<edXML/>", message_type="edoc", sender=A)  # OK without DocId: transient
    assert type(caught.value) is kind
    if reason:
        assert caught.value.reason == reason  # type: ignore[attr-defined]


def test_fetch_decodes_base64_and_rejects_garbage() -> None:
    good = base64.b64encode(b"<edXML/>").decode()
    answer = {"status": "OK", "ErrorCode": "0", "data": good}
    with _mock_client(lambda r: httpx.Response(200, json=answer)) as client:
        assert client.fetch("1") == b"<edXML/>"
    bad = {**answer, "data": "%%%"}
    with (
        _mock_client(lambda r: httpx.Response(200, json=bad)) as client,
        pytest.raises(TransientError),
    ):
        client.fetch("1")


def test_plain_http_only_to_loopback() -> None:
    secret = SECRETS[SYSTEMS[A]]
    with pytest.raises(ConfigurationError, match="plain http"):
        VxpClient(VxpSettings(endpoint="http://hub.example.gov.vn", systemid="s", secret=secret))
    VxpClient(
        VxpSettings(endpoint="http://hub.test", systemid="s", secret=secret, allow_plain_http=True)
    ).close()
    with pytest.raises(ConfigurationError, match="not an http"):
        VxpClient(VxpSettings(endpoint="ftp://hub", systemid="s", secret=secret))
