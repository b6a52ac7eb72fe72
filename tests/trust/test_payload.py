"""Attachment encryption: wire marking, round trips, per-destination policy, full pipeline."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from connector.edxml.builder import build_package
from connector.edxml.model import Attachment, EdocPackage
from connector.edxml.parser import parse_package
from connector.errors import PermanentError
from connector.trust import xmldsig
from connector.trust.keys import PrivateKey, load_certificate, load_identity, load_private_key
from connector.trust.payload import (
    ENCRYPTED_CONTENT_TYPE,
    Destination,
    EncryptionPolicy,
    decrypt_attachment,
    decrypt_attachments,
    encrypt_attachment,
    encrypt_attachments,
    is_encrypted,
)
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from tests.edxml.factories import edoc

OPENSSL = shutil.which("openssl")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\r\n%%EOF\n"
ATTACHMENT = Attachment("7", "Quyết định số 12 ngày 20.11.signed.pdf", "application/pdf", PDF,
                        description="Quyết định")
A_ID, B_ID = "000.00.31.H12", "000.00.32.H12"
WHEN, REQUIRED, OFF = (EncryptionPolicy.WHEN_POSSIBLE, EncryptionPolicy.REQUIRED,
                       EncryptionPolicy.OFF)


@pytest.fixture(scope="module")
def destinations(demo_pki: DemoPki) -> dict[str, Destination]:
    chain = (load_certificate(demo_pki.intermediate_cert),)
    return {
        organ_id: Destination(organ_id, WHEN, load_certificate(agency.encryption.cert), chain)
        for organ_id, agency in demo_pki.agencies.items()
    }


def _key(demo_pki: DemoPki, organ_id: str) -> tuple[PrivateKey, x509.Certificate]:
    pair = demo_pki.agency(organ_id).encryption
    return load_private_key(pair.key), load_certificate(pair.cert)


def test_encrypted_attachment_is_marked_and_opaque(demo_pki: DemoPki,
                                                   destinations: dict[str, Destination]) -> None:
    certificate = destinations[A_ID].certificate
    assert certificate is not None
    sealed = encrypt_attachment(ATTACHMENT, [certificate])
    assert is_encrypted(sealed) and not is_encrypted(ATTACHMENT)
    assert sealed.content_type == ENCRYPTED_CONTENT_TYPE
    assert sealed.name == ATTACHMENT.name + ".p7m"
    assert (sealed.content_id, sealed.description) == ("7", "Quyết định")
    assert PDF[:200] not in sealed.data and b"pdf" not in sealed.data.lower()


@pytest.mark.parametrize("organ_id", [A_ID, B_ID], ids=["rsa", "ec"])
def test_each_recipient_recovers_type_name_and_bytes(
    organ_id: str, demo_pki: DemoPki, destinations: dict[str, Destination]
) -> None:
    outcome = encrypt_attachments([ATTACHMENT], list(destinations.values()))
    assert outcome.encrypted and set(outcome.recipients) == {A_ID, B_ID}
    key, cert = _key(demo_pki, organ_id)
    assert decrypt_attachment(outcome.attachments[0], key, cert) == ATTACHMENT


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
@pytest.mark.tools
def test_openssl_reads_the_mime_entity(demo_pki: DemoPki, destinations: dict[str, Destination],
                                       tmp_path: Path) -> None:
    assert OPENSSL is not None
    certificate = destinations[B_ID].certificate
    assert certificate is not None
    source = tmp_path / "attachment.p7m"
    source.write_bytes(encrypt_attachment(ATTACHMENT, [certificate]).data)
    pair = demo_pki.agency(B_ID).encryption
    result = subprocess.run(
        [OPENSSL, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(source),
         "-inkey", str(pair.key), "-recip", str(pair.cert)],
        capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"Content-Type: application/pdf" in head
    assert b"filename*=UTF-8''Quy%E1%BA%BFt" in head
    assert body == PDF


def test_policies(destinations: dict[str, Destination]) -> None:
    a, b = destinations[A_ID], destinations[B_ID]
    b_without = replace(b, certificate=None)
    assert not encrypt_attachments([ATTACHMENT], [replace(a, policy=OFF),
                                                  replace(b, policy=OFF)]).encrypted
    plain = encrypt_attachments([ATTACHMENT], [a, b_without])
    assert not plain.encrypted and plain.attachments == (ATTACHMENT,)
    assert B_ID in plain.decision and "no cert" in plain.decision
    off_peer = encrypt_attachments([ATTACHMENT], [a, replace(b, policy=OFF)])
    assert not off_peer.encrypted and "encryption off" in off_peer.decision
    assert encrypt_attachments([ATTACHMENT], [replace(a, policy=REQUIRED), b]).encrypted


def test_required_without_certificate_is_refused(destinations: dict[str, Destination]) -> None:
    with pytest.raises(PermanentError) as info:
        encrypt_attachments([ATTACHMENT], [Destination(B_ID, REQUIRED, None)])
    assert info.value.reason == "encryption_cert_missing"
    assert B_ID in info.value.message


def test_required_next_to_a_reader_without_certificate_is_refused(
    destinations: dict[str, Destination]
) -> None:
    a, b = destinations[A_ID], destinations[B_ID]
    with pytest.raises(PermanentError) as info:
        encrypt_attachments([ATTACHMENT], [replace(a, policy=REQUIRED),
                                           replace(b, certificate=None)])
    assert info.value.reason == "encryption_conflict"


def test_sender_keeps_a_readable_copy(demo_pki: DemoPki,
                                      destinations: dict[str, Destination]) -> None:
    sender_key, sender_cert = _key(demo_pki, A_ID)
    outcome = encrypt_attachments([ATTACHMENT], [destinations[B_ID]],
                                  sender_certificate=sender_cert)
    assert outcome.recipients == (B_ID,) and "sender" in outcome.decision
    assert decrypt_attachments(outcome.attachments, sender_key, sender_cert) == (ATTACHMENT,)


def test_recipient_certificates_are_checked_against_the_trust_store(
    demo_pki: DemoPki, destinations: dict[str, Destination], trust_store: TrustStore
) -> None:
    valid = encrypt_attachments([ATTACHMENT], list(destinations.values()), trust=trust_store)
    assert valid.encrypted
    signing_only = replace(destinations[B_ID],
                           certificate=load_certificate(demo_pki.second.signer.cert))
    with pytest.raises(PermanentError) as info:
        encrypt_attachments([ATTACHMENT], [signing_only], trust=trust_store)
    assert info.value.reason == "wrong_key_usage"


def test_wrong_key_names_the_attachment(demo_pki: DemoPki,
                                        destinations: dict[str, Destination]) -> None:
    outcome = encrypt_attachments([ATTACHMENT], [destinations[A_ID]])
    key, cert = _key(demo_pki, B_ID)
    with pytest.raises(PermanentError) as info:
        decrypt_attachment(outcome.attachments[0], key, cert)
    assert info.value.reason == "decrypt_failed"
    assert ATTACHMENT.name in info.value.message


def test_seal_encrypt_build_sign_then_verify_parse_decrypt(
    demo_pki: DemoPki, destinations: dict[str, Destination], trust_store: TrustStore
) -> None:
    package = edoc(attachments=(ATTACHMENT, replace(ATTACHMENT, content_id="8", name="phu-luc.docx",
                                                    content_type="application/vnd.openxmlformats-"
                                                    "officedocument.wordprocessingml.document",
                                                    data=b"PK\x03\x04 docx")))
    outcome = encrypt_attachments(package.attachments, [destinations[B_ID]])
    wire = build_package(replace(package, attachments=outcome.attachments))
    assert wire.count(b"smime-type=authEnveloped-data") == 4  # manifest + payload, twice
    seal = demo_pki.first.seal
    signed = xmldsig.sign_package(wire, load_identity(seal.key, seal.cert,
                                                      [demo_pki.intermediate_cert]))

    verified = xmldsig.verify_package(signed, trust_store, legacy_policy="refuse")
    received = parse_package(verified.data)
    assert isinstance(received, EdocPackage)
    assert all(is_encrypted(a) for a in received.attachments)
    key, cert = _key(demo_pki, B_ID)
    assert decrypt_attachments(received.attachments, key, cert) == package.attachments
