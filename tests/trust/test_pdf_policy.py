"""Per-direction PDF policy: personal signature before the seal, seals on attachments."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pytest

from connector.errors import PermanentError
from connector.trust.keys import KeySource, SigningIdentity
from connector.trust.pdf_policy import PdfPolicy, Role, check_inbound, is_pdf, seal_outbound
from connector.trust.pdf_seal import StampOptions, seal_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import SignerKind, TrustStore


def test_outbound_main_needs_a_personal_signature(
    plain_pdf: bytes, seal_a: SigningIdentity, trust_store: TrustStore
) -> None:
    with pytest.raises(PermanentError) as caught:
        seal_outbound(plain_pdf, Role.MAIN, seal_a, trust_store, name="cv-12.pdf")
    assert caught.value.reason == "personal_signature_missing"
    assert "cv-12.pdf" in caught.value.message


def test_outbound_main_is_sealed_once(
    signed_pdf: bytes, seal_a: SigningIdentity, trust_store: TrustStore
) -> None:
    sealed = seal_outbound(signed_pdf, Role.MAIN, seal_a, trust_store)
    report = verify_pdf(sealed, trust_store)
    assert report.all_ok
    assert [s.kind for s in report.signatures] == [SignerKind.PERSONAL, SignerKind.ORGANISATION]
    assert seal_outbound(sealed, Role.MAIN, seal_a, trust_store) is sealed  # retry: unchanged


def test_outbound_attachment_is_sealed_without_personal_signature(
    plain_pdf: bytes, seal_b: SigningIdentity, trust_store: TrustStore
) -> None:
    sealed = seal_outbound(plain_pdf, Role.ATTACHMENT, seal_b, trust_store)
    assert [s.kind for s in verify_pdf(sealed, trust_store).signatures] == [
        SignerKind.ORGANISATION]


def test_outbound_refuses_a_document_with_a_broken_signature(
    sealed_pdf: bytes, seal_a: SigningIdentity, trust_store: TrustStore,
    swap_page_content: Callable[[bytes], bytes],
) -> None:
    with pytest.raises(PermanentError) as caught:
        seal_outbound(swap_page_content(sealed_pdf), Role.MAIN, seal_a, trust_store)
    assert caught.value.reason == "document_modified"


def test_inbound_main_needs_personal_and_seal(
    plain_pdf: bytes, signed_pdf: bytes, sealed_pdf: bytes, seal_a: SigningIdentity,
    trust_store: TrustStore,
) -> None:
    report = check_inbound(sealed_pdf, Role.MAIN, trust_store)
    assert len(report.valid_of(SignerKind.PERSONAL)) == 1
    with pytest.raises(PermanentError) as caught:
        check_inbound(signed_pdf, Role.MAIN, trust_store)
    assert caught.value.reason == "organisation_signature_missing"
    with pytest.raises(PermanentError) as caught:
        check_inbound(seal_pdf(plain_pdf, seal_a), Role.MAIN, trust_store)
    assert caught.value.reason == "personal_signature_missing"


def test_inbound_attachment_needs_the_seal(
    plain_pdf: bytes, signed_pdf: bytes, seal_a: SigningIdentity, trust_store: TrustStore
) -> None:
    check_inbound(seal_pdf(plain_pdf, seal_a), Role.ATTACHMENT, trust_store)
    for unsealed in (plain_pdf, signed_pdf):
        with pytest.raises(PermanentError) as caught:
            check_inbound(unsealed, Role.ATTACHMENT, trust_store)
        assert caught.value.reason == "organisation_signature_missing"


def test_inbound_seal_must_match_sender_when_asked(
    plain_pdf: bytes, seal_b: SigningIdentity, trust_store: TrustStore, demo_pki: DemoPki
) -> None:
    sealed_by_b = seal_pdf(plain_pdf, seal_b)
    strict = PdfPolicy(seal_must_match_sender=True)
    check_inbound(sealed_by_b, Role.ATTACHMENT, trust_store, strict,
                  sender_organ_id=demo_pki.second.organ_id)
    with pytest.raises(PermanentError) as caught:
        check_inbound(sealed_by_b, Role.ATTACHMENT, trust_store, strict,
                      sender_organ_id=demo_pki.first.organ_id)
    assert caught.value.reason == "seal_organisation_mismatch"


def test_runs_in_a_worker_process(
    signed_pdf: bytes, demo_pki: DemoPki, trust_store: TrustStore
) -> None:
    agency = demo_pki.first
    source = KeySource(agency.seal.key, agency.seal.cert, (agency.chain,))
    pickle.dumps((source, trust_store, PdfPolicy(stamp=StampOptions(visible=True))))
    with ProcessPoolExecutor(max_workers=1) as pool:
        sealed = pool.submit(seal_outbound, signed_pdf, Role.MAIN, source, trust_store).result(
            timeout=120)
    assert verify_pdf(sealed, trust_store).all_ok


def test_is_pdf(plain_pdf: bytes) -> None:
    assert is_pdf(plain_pdf) and is_pdf(b"\r\n" + plain_pdf)
    assert not is_pdf(b"PK\x03\x04 zip")
