"""The eDoc REST v2 client against the hub emulator, including traffic across protocols."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector.errors import (
    ConfigurationError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.hub import HubEmulator, RefusalRule
from connector.interconnect import (
    EdocRestClient,
    EdocRestSettings,
    HubTransport,
    Secret,
    VxpClient,
)
from connector.interconnect import vxp_wire as w
from tests.hub.harness import SECRETS, SYSTEMS, A, B, C, edoc_bytes, status_bytes


def rest_client(hub: HubEmulator, organ: str, token: Secret | None = None) -> EdocRestClient:
    settings = EdocRestSettings(
        endpoint=f"{hub.url}/EdocService",
        organ_id=organ,
        token=token or SECRETS[SYSTEMS[organ]],
        read_timeout=10.0,
    )
    return EdocRestClient(settings)


@pytest.fixture
def rest_a(hub: HubEmulator) -> Iterator[EdocRestClient]:
    with rest_client(hub, A) as client:
        yield client


def test_rest_client_is_a_hub_transport(rest_a: EdocRestClient) -> None:
    assert isinstance(rest_a, HubTransport)


def test_rest_sender_vxp_receiver_and_status_back(
    hub: HubEmulator, rest_a: EdocRestClient, client_b: VxpClient
) -> None:
    document_id = f"{A},2026/11/20,8/SNV-VP"
    package = edoc_bytes(A, (B,), document_id=document_id)
    doc_id = rest_a.send(package, message_type="edoc", sender=A)
    assert rest_a.send(package, message_type="edoc", sender=A) == doc_id  # resend recognised

    listed = client_b.pending("edoc")
    assert len(listed) == 1 and client_b.fetch(listed[0].doc_id) == package
    client_b.acknowledge(listed[0].doc_id, ok=True)

    notice = status_bytes(B, A, document_id=document_id, code="01")
    client_b.send(notice, message_type="status", sender=B)
    assert rest_a.pending("edoc") == []
    statuses = rest_a.pending("status")
    assert [(s.sender, s.message_type) for s in statuses] == [(B, "status")]
    assert rest_a.fetch(statuses[0].doc_id) == notice  # fetched with type STATUS
    rest_a.acknowledge(statuses[0].doc_id, ok=False)  # no negative ack: confirmed anyway
    assert rest_a.pending("status") == []


def test_vxp_sender_rest_receiver(hub: HubEmulator, client_a: VxpClient) -> None:
    package = edoc_bytes(A, (B, C))
    client_a.send(package, message_type="edoc", sender=A)
    with rest_client(hub, B) as rest_b:
        listed = rest_b.pending("edoc")
        assert [(p.sender, p.recipient) for p in listed] == [(A, B)]
        assert rest_b.fetch(listed[0].doc_id) == package
        rest_b.acknowledge(listed[0].doc_id, ok=True)
        assert rest_b.pending("edoc") == []
        assert {a.organ_id for a in rest_b.directory()} == {A, B, C}
    assert len(hub.inbox(C)) == 1


def test_bad_token_is_a_configuration_error(hub: HubEmulator) -> None:
    client = rest_client(hub, A, token=Secret("not-the-token"))
    with client, pytest.raises(ConfigurationError) as refused:
        client.pending("edoc")
    assert refused.value.reason == "hub_auth" and "9999" in str(refused.value)
    assert "not-the-token" not in str(refused.value)
    answer = httpx.get(f"{hub.url}/EdocService/getPendingDocIds", headers={"type": "EDOC"})
    assert answer.status_code == 401
    assert answer.json() == {
        "code": "9999",
        "status": "False",
        "errors": ["missing or invalid credentials"],
    }


def test_sending_as_someone_else_is_refused_locally(rest_a: EdocRestClient) -> None:
    with pytest.raises(ConfigurationError):
        rest_a.send(edoc_bytes(B, (A,)), message_type="edoc", sender=B)


def test_refusals_and_faults(hub: HubEmulator, rest_a: EdocRestClient) -> None:
    hub.set_faults(refuse=[RefusalRule(sender=A, error_code="42", description="Sai định dạng")])
    with pytest.raises(PermanentError, match="code 42: Sai định dạng"):
        rest_a.send(edoc_bytes(), message_type="edoc", sender=A)
    hub.clear_faults()
    with pytest.raises(PermanentError, match="1001"):
        rest_a.send(b"garbage", message_type="edoc", sender=A)
    with pytest.raises(PermanentError, match="1404"):
        rest_a.fetch("unknown")
    hub.inject("error", call="getPendingDocIds", status=503)
    with pytest.raises(UnavailableError):
        rest_a.pending("edoc")
    package = edoc_bytes()
    hub.inject("drop_after", call="sendDocument")
    with pytest.raises(TransientError):
        rest_a.send(package, message_type="edoc", sender=A)
    assert rest_a.send(package, message_type="edoc", sender=A) == hub.packages()[0].doc_id
    assert len(hub.inbox(B)) == 1


def test_sdk_hash_form_is_accepted(hub: HubEmulator) -> None:
    package = edoc_bytes()
    headers = {
        "organid": A,
        "authorization": f"Bearer {SECRETS[SYSTEMS[A]].reveal().decode()}",
        "type": "EDOC",
        "hash-edoc": w.sdk_file_hash(package),
    }
    answer = httpx.post(f"{hub.url}/EdocService/sendDocument", headers=headers, content=package)
    assert answer.json()["code"] == "0" and answer.json()["docId"]
    headers["hash-edoc"] = w.file_hash(b"other")
    wrong = httpx.post(f"{hub.url}/EdocService/sendDocument", headers=headers, content=package)
    assert wrong.json()["code"] == "1004"


# -- the wire's variable points are settings (known from notes, not a captured client) ----


def _recording(settings: EdocRestSettings) -> tuple[EdocRestClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json={"code": "0", "status": "True", "docId": "9"})

    return EdocRestClient(settings, transport=httpx.MockTransport(handler)), seen


def _settings(**wire: object) -> EdocRestSettings:
    return EdocRestSettings(
        endpoint="https://edoc.example.gov.vn/EdocService",
        organ_id=A,
        token=Secret("rest-token"),
        **wire,  # type: ignore[arg-type]
    )


def test_defaults_are_the_notes_reading() -> None:
    client, seen = _recording(_settings())
    package = edoc_bytes()
    with client:
        client.send(package, message_type="edoc", sender=A)
    (request,) = seen
    assert request.headers["organid"] == A
    assert request.headers["authorization"] == "rest-token"
    assert request.headers["type"] == "EDOC"
    assert request.headers["hash-edoc"] == w.file_hash(package)
    assert request.headers["Content-Type"] == "application/xml"
    assert request.content == package


def test_header_names_hash_form_and_body_form_are_settings() -> None:
    client, seen = _recording(
        _settings(
            organ_header="X-Organ",
            token_header="X-Token",
            hash_header="X-Hash",
            hash_form="sdk",
            upload="multipart",
            file_part="edoc",
        )
    )
    package = edoc_bytes()
    with client:
        client.send(package, message_type="status", sender=A)
    (request,) = seen
    assert request.headers["X-Organ"] == A and request.headers["X-Token"] == "rest-token"
    assert request.headers["X-Hash"] == w.sdk_file_hash(package)
    assert "organid" not in request.headers and "hash-edoc" not in request.headers
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="edoc"' in request.content and package in request.content


@pytest.mark.parametrize("upload", ["raw", "multipart"])
@pytest.mark.parametrize("hash_form", ["standard", "sdk"])
def test_the_emulator_takes_each_body_and_hash_form(
    hub: HubEmulator, upload: str, hash_form: str
) -> None:
    settings = EdocRestSettings(
        endpoint=f"{hub.url}/EdocService",
        organ_id=A,
        token=SECRETS[SYSTEMS[A]],
        upload=upload,  # type: ignore[arg-type]
        hash_form=hash_form,  # type: ignore[arg-type]
    )
    package = edoc_bytes(A, (B,))
    with EdocRestClient(settings) as client:
        doc_id = client.send(package, message_type="edoc", sender=A)
    assert [p.data for p in hub.packages() if p.doc_id == doc_id] == [package]


def test_answers_are_bounded_and_failures_named_as_for_vxp() -> None:
    big = b'{"code":"0","data":"' + b"A" * (2 * 1024 * 1024) + b'"}'
    client = EdocRestClient(
        _settings(max_answer_bytes=1024 * 1024),
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=big)),
    )
    with client, pytest.raises(PermanentError) as caught:
        client.fetch("1")
    assert caught.value.reason == "hub_answer_too_large"

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with (
        EdocRestClient(_settings(), transport=httpx.MockTransport(refused)) as client,
        pytest.raises(UnavailableError, match="connection refused"),
    ):
        client.pending("edoc")
