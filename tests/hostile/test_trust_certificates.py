"""Bad certificates in every place that could vouch for a sender, through B's pipeline.

Expired, revoked, wrong key usage, chained to an untrusted root (with A's seal subject and
OrganId), self-signed with A's OrganId: as the XML signer of a package from A, as the seal on
its main document (placeholder package), as the personal signature on the main document.
Each: refused with the certificate's reason code, nothing delivered, the hub told ``fail``,
B still polling, and a 02 only where A's own valid seal established the sender.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.edxml import build_package
from connector.store.states import Direction
from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import StampOptions, seal_pdf, sign_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import ORGANISATION_SEAL_POLICY
from connector.trust.xmldsig import sign_package
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.hostile.trust_kit import (
    A_ID,
    A_NAME,
    Kit,
    document,
    list_for_b,
    packaged,
    pdf,
    self_signed,
)


def expired_seal(pki: DemoPki) -> SigningIdentity:
    """A's organisation seal from the trusted CA, expired yesterday."""
    issuer_key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    issuer = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, A_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, A_NAME),
            x509.NameAttribute(NameOID.COMMON_NAME, A_NAME),
        ])).issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(ORGANISATION_SEAL_POLICY, None)]), critical=False)
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return SigningIdentity(private_key=key, certificate=cert,
                           chain=(x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes()),))


def bad(kit: Kit, name: str) -> SigningIdentity:
    pki = kit.pki
    chain = (pki.intermediate_cert,)
    if name == "expired personal":
        return load_identity(pki.expired.key, pki.expired.cert, chain)
    if name == "revoked personal":
        return load_identity(pki.revoked.key, pki.revoked.cert, chain)
    if name == "wrong key usage":
        return load_identity(pki.wrong_usage.key, pki.wrong_usage.cert, chain)
    if name == "untrusted root":
        return load_identity(pki.untrusted.key, pki.untrusted.cert, (pki.untrusted_root_cert,))
    if name == "expired seal":
        return expired_seal(pki)
    if name == "self-signed with A's OrganId":
        return self_signed("Sở Nội vụ tỉnh Cà Mau (demo)")
    raise AssertionError(name)


BAD = ("expired personal", "revoked personal", "wrong key usage", "untrusted root",
       "expired seal", "self-signed with A's OrganId")
REASONS = {
    "expired personal": {"cert_expired"},
    "revoked personal": {"cert_revoked"},
    "wrong key usage": {"wrong_key_usage"},
    "untrusted root": {"untrusted_root"},
    "expired seal": {"cert_expired"},
    "self-signed with A's OrganId": {"cert_invalid", "untrusted_root"},
}


def _take(world: World, b: Runtime, raw: bytes) -> tuple[str | None, int, list[str]]:  # noqa: F811
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1
    assert inbound.poll_once(b.services) == 0  # still polling; nothing listed again
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    reason = package.last_error.reason if package.last_error else None
    return reason, len(world.b.deliveries(kind=None)), [
        n.status_code or "" for n in status_notices(b)]


@pytest.mark.parametrize("name", BAD)
def test_a_bad_xml_signer_is_refused_unanswered(world: World, b: Runtime, kit: Kit,  # noqa: F811
                                                name: str) -> None:
    raw = sign_package(build_package(document("A", attachments=(
        pdf("1", kit.main_pdf("seal:A")),))), bad(kit, name))
    reason, delivered, notices = _take(world, b, raw)
    assert reason in REASONS[name] and delivered == 0
    assert notices == [], "the XML signature failed: nothing established the sender"


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("xml", ["placeholder", "seal:A"])
def test_a_bad_seal_on_the_main_document_is_refused(
    world: World, b: Runtime, kit: Kit, name: str, xml: str,  # noqa: F811
) -> None:
    main = seal_pdf(sign_pdf(make_pdf(("Cong van", name), pages=1), kit.identity("personal:A")),
                    bad(kit, name), stamp=StampOptions(visible=False))
    reason, delivered, notices = _take(
        world, b, packaged(kit, document("A", attachments=(pdf("1", main),)), xml))
    assert reason in REASONS[name] and delivered == 0
    assert notices == (["02"] if xml == "seal:A" else [])


@pytest.mark.parametrize("name", ["expired personal", "revoked personal", "untrusted root"])
def test_a_bad_personal_signature_under_a_good_seal_is_refused(
    world: World, b: Runtime, kit: Kit, name: str,  # noqa: F811
) -> None:
    main = seal_pdf(sign_pdf(make_pdf(("Cong van", name), pages=1), bad(kit, name)),
                    kit.identity("seal:A"), stamp=StampOptions(visible=False))
    reason, delivered, notices = _take(
        world, b, packaged(kit, document("A", attachments=(pdf("1", main),)), "placeholder"))
    assert reason in REASONS[name] and delivered == 0
    assert notices == [], "a failed main document establishes no one, even under A's seal"
