"""The reusing seal signer: the same bytes as pyHanko's own path, reuse only where it is safe."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from connector.trust import pdf_seal
from connector.trust.keys import SigningIdentity
from connector.trust.pdf_seal import CachedKeySigner, StampOptions, seal_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DEMO_AGENCIES, DemoPki, issue_seal_certificate
from connector.trust.seal_signer import ReusingSigner, _reusable_shape
from connector.trust.truststore import SignerKind, TrustStore

pytestmark = pytest.mark.filterwarnings("ignore")


def _sign(signer: CachedKeySigner, digest: bytes, *, dry_run: bool = False,
          use_pades: bool = True) -> bytes:
    result = asyncio.run(signer.async_sign(digest, "sha256", dry_run=dry_run,
                                           use_pades=use_pades))
    der: bytes = result.dump()
    return der


@pytest.mark.parametrize("use_pades", [True, False])
def test_containers_are_byte_identical_to_pyhankos(seal_a: SigningIdentity,
                                                   use_pades: bool) -> None:
    """RSA PKCS#1 v1.5 is deterministic: every container must be exactly pyHanko's own."""
    stock, reusing = CachedKeySigner(seal_a), ReusingSigner(seal_a)
    for text in (b"first document", b"second document", b"third"):
        digest = hashlib.sha256(text).digest()
        if use_pades:  # PAdES has no signing-time attribute: the whole container is fixed
            assert _sign(reusing, digest) == _sign(stock, digest)
        else:
            ours = cms.ContentInfo.load(_sign(reusing, digest, use_pades=False))
            theirs = cms.ContentInfo.load(_sign(stock, digest, use_pades=False))
            ours_attrs = ours["content"]["signer_infos"][0]["signed_attrs"]
            their_attrs = theirs["content"]["signer_infos"][0]["signed_attrs"]
            assert [a["type"].native for a in ours_attrs] == [
                a["type"].native for a in their_attrs]


@pytest.mark.parametrize("who", ["seal_a", "seal_b", "signer_a"])
def test_size_estimate_is_pyhankos(who: str, request: pytest.FixtureRequest) -> None:
    identity: SigningIdentity = request.getfixturevalue(who)
    stock, reusing = CachedKeySigner(identity), ReusingSigner(identity)
    digest = hashlib.sha256(b"").digest()
    expected = len(_sign(stock, digest, dry_run=True))
    # ECDSA values vary by a byte or two in DER from one signature to the next (pyHanko's own
    # estimates vary as much); RSA values never do.
    slack = 0 if who == "seal_a" else 4
    for _ in range(3):  # the first is made, the next ones are reused
        assert abs(len(_sign(reusing, digest, dry_run=True)) - expected) <= slack


def test_signed_attributes_carry_this_signers_certificate(seal_a: SigningIdentity,
                                                          seal_b: SigningIdentity) -> None:
    """Each signer keeps its own certificate's attribute: never another signer's."""
    for identity in (seal_a, seal_b, seal_a):
        signer = ReusingSigner(identity)
        container = cms.ContentInfo.load(_sign(signer, hashlib.sha256(b"x").digest()))
        attrs = container["content"]["signer_infos"][0]["signed_attrs"]
        value = next(a for a in attrs if a["type"].native == "signing_certificate_v2")
        cert_hash = value["values"][0]["certs"][0]["cert_hash"].native
        assert signer.signing_cert is not None
        assert cert_hash == hashlib.sha256(signer.signing_cert.dump()).digest()


def test_dry_runs_with_extra_attributes_are_never_reused() -> None:
    assert _reusable_shape(True, "SHA256", True, None, None, True, None) == ("sha256", True, True)
    assert _reusable_shape(False, "sha256", True, None, None, True, None) is None
    assert _reusable_shape(True, "sha256", True, object(), None, True, None) is None
    assert _reusable_shape(True, "sha256", True, None, None, True, {"content": b""}) is None
    with_revinfo = PdfCMSSignedAttributes(adobe_revinfo_attr=object())
    assert _reusable_shape(True, "sha256", True, None, with_revinfo, True, None) is None
    assert _reusable_shape(True, "sha256", True, None, PdfCMSSignedAttributes(), True,
                           None) is not None


def test_repeated_seals_verify(signed_pdf: bytes, seal_a: SigningIdentity, seal_b: SigningIdentity,
                               trust_store: TrustStore) -> None:
    assert isinstance(pdf_seal.signer_for(seal_a), ReusingSigner)
    for seal in (seal_a, seal_b, seal_a):
        sealed = seal_pdf(signed_pdf, seal, stamp=StampOptions(visible=True))
        report = verify_pdf(sealed, trust_store)
        assert report.all_ok, report.failures
        assert [s.kind for s in report.signatures] == [SignerKind.PERSONAL,
                                                       SignerKind.ORGANISATION]


def test_a_renewed_certificate_gets_a_signer_of_its_own(
    demo_pki: DemoPki, seal_a: SigningIdentity, signed_pdf: bytes, trust_store: TrustStore,
) -> None:
    """Same key, renewed certificate (a new identity loaded after the file changed): the
    seal carries the new certificate, never the kept attribute of the old one."""
    pdf_seal.seal_pdf(signed_pdf, seal_a)  # the old identity's signer and attribute kept
    renewed_cert = issue_seal_certificate(demo_pki, DEMO_AGENCIES[0], seal_a.private_key.public_key())
    renewed = dataclasses.replace(seal_a, certificate=renewed_cert)
    sealed = pdf_seal.seal_pdf(signed_pdf, renewed)
    report = verify_pdf(sealed, trust_store)
    assert report.all_ok
    seal_report = report.signatures[-1]
    assert seal_report.facts is not None
    signer = pdf_seal.signer_for(renewed)
    assert signer.signing_cert is not None
    assert signer.signing_cert.serial_number == renewed_cert.serial_number
    assert pdf_seal.signer_for(seal_a) is not signer
    container = cms.ContentInfo.load(_sign(signer, hashlib.sha256(b"x").digest()))  # type: ignore[arg-type]
    attrs = container["content"]["signer_infos"][0]["signed_attrs"]
    value = next(a for a in attrs if a["type"].native == "signing_certificate_v2")
    assert value["values"][0]["certs"][0]["cert_hash"].native == hashlib.sha256(
        renewed_cert.public_bytes(serialization.Encoding.DER)).digest()
