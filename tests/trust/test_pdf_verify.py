"""PDF verification: both signatures valid after sealing; every attack refused with its reason."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connector.errors import PermanentError
from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki, KeyPair
from connector.trust.truststore import SignerKind, TrustStore

PdfAttack = Callable[[bytes], bytes]


def test_personal_and_organisation_signatures_valid_after_sealing(
    sealed_pdf: bytes, trust_store: TrustStore, demo_pki: DemoPki
) -> None:
    report = verify_pdf(sealed_pdf, trust_store)
    assert report.all_ok, [s.problem for s in report.signatures]
    personal, seal = report.signatures
    assert personal.kind is SignerKind.PERSONAL
    assert personal.modification == "FORM_FILLING"  # the seal's update is allowed
    assert personal.coverage == "ENTIRE_REVISION"
    assert seal.kind is SignerKind.ORGANISATION
    assert seal.organ_id == demo_pki.first.organ_id
    assert seal.total_document
    assert seal.signing_time is not None and seal.signing_time.utcoffset() is not None
    assert seal.signing_time.isoformat().endswith("+07:00")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "cert_expired"),
        ("revoked", "cert_revoked"),
        ("untrusted", "untrusted_root"),
        ("wrong_usage", "wrong_key_usage"),
    ],
)
def test_bad_certificates_refused(
    demo_pki: DemoPki, trust_store: TrustStore, plain_pdf: bytes, case: str, reason: str,
    identity_of: Callable[[KeyPair], SigningIdentity],
) -> None:
    pair = getattr(demo_pki, case)
    identity = identity_of(pair)
    if case == "untrusted":
        identity = load_identity(pair.key, pair.cert, [demo_pki.untrusted_root_cert])
    report = verify_pdf(sign_pdf(plain_pdf, identity), trust_store)
    (signature,) = report.signatures
    assert not signature.ok and not report.all_ok
    assert signature.reason == reason
    assert signature.problem is not None and "CN=" in signature.problem


def test_tampered_byte_refused(
    sealed_pdf: bytes, trust_store: TrustStore, flip_signed_byte: PdfAttack
) -> None:
    report = verify_pdf(flip_signed_byte(sealed_pdf), trust_store)
    assert [s.reason for s in report.signatures] == ["signature_tampered"] * 2
    assert not any(s.intact for s in report.signatures)


def test_incremental_content_swap_refused(
    sealed_pdf: bytes, trust_store: TrustStore, swap_page_content: PdfAttack
) -> None:
    report = verify_pdf(swap_page_content(sealed_pdf), trust_store)
    assert not report.all_ok
    for signature in report.signatures:
        assert signature.intact and signature.valid and signature.trusted  # bytes still match
        assert signature.reason == "document_modified"
        assert signature.modification == "OTHER"


def test_unsigned_and_garbage(trust_store: TrustStore) -> None:
    report = verify_pdf(make_pdf(), trust_store)
    assert report.signatures == () and not report.all_ok
    with pytest.raises(PermanentError) as caught:
        verify_pdf(b"not a pdf at all", trust_store)
    assert caught.value.reason == "pdf_unreadable"


def test_store_without_our_root_refuses_seal(demo_pki: DemoPki, sealed_pdf: bytes) -> None:
    other = TrustStore.from_dirs(demo_pki.untrusted_dir)
    report = verify_pdf(sealed_pdf, other)
    assert {s.reason for s in report.signatures} == {"untrusted_root"}
