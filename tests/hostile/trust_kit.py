"""Shared material of the trust families (tests/hostile/test_trust_*.py): three agencies.

A (000.00.31.H12) and C (000.00.33.H12) are peers, B (000.00.32.H12) is the receiving
connector under test. Every agency has an organisation seal certificate carrying its OrganId
and a personal signer certificate; A also has an *unbound* seal: an organisation certificate
from the same trusted CA whose subject names A but carries no OrganId (as some real CAs issue
them), so only a configured pin or issued name can bind it. Signing helpers build the main
PDF (personal signature + chosen seal) and packages with any XML signer or the QCVN
placeholder.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector.edxml import build_package, peek
from connector.edxml.model import NS, Attachment, EdocPackage, LegacySignature, Organization
from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import StampOptions, seal_pdf, sign_pdf
from connector.trust.pki import CRL_BASE_URL, DEMO_AGENCIES, DemoAgency, DemoPki, create_demo_pki
from connector.trust.truststore import ORGANISATION_SEAL_POLICY
from connector.trust.xmldsig import sign_package
from tests.edxml.factories import edoc

if TYPE_CHECKING:
    from tests.e2e.harness import World

A_ID, B_ID, C_ID = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"
AGENCY_C = DemoAgency(C_ID, "Sở Tư pháp tỉnh Cà Mau (demo)", ("Văn Cường", "Lê"), rsa=False)
A_NAME = DEMO_AGENCIES[0].name
PLACEHOLDER = LegacySignature(
    f'<Signature xmlns="{NS}"><SignatureValue>bm90IGEgc2lnbmF0dXJl</SignatureValue>'
    "</Signature>".encode()
)


def three_agency_pki(directory: Path) -> DemoPki:
    pki = create_demo_pki(directory, (*DEMO_AGENCIES, AGENCY_C))
    _issue_unbound_seal(pki, directory / "unbound")
    return pki


def _issue_unbound_seal(pki: DemoPki, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    issuer_key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    issuer = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, A_NAME),
        x509.NameAttribute(NameOID.COMMON_NAME, A_NAME),
    ])
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(CRL_BASE_URL + "intermediate.crl")],
        relative_name=None, reasons=None, crl_issuer=None,
    )
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(ORGANISATION_SEAL_POLICY, None)]), critical=False)
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (folder / "seal.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / "seal.key").chmod(0o600)
    (folder / "seal.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True, eq=False)  # hashed by identity: one kit per module
class Kit:
    """Identities of the three agencies, by name: ``seal:A``, ``personal:C``, ``unbound:A``."""

    pki: DemoPki

    @functools.cache  # noqa: B019 - one kit per module, identities loaded once
    def identity(self, name: str) -> SigningIdentity:
        kind, _, agency = name.partition(":")
        chain = (self.pki.intermediate_cert,)
        if kind == "unbound":
            folder = self.pki.directory / "unbound"
            return load_identity(folder / "seal.key", folder / "seal.pem", chain)
        pair = self.pki.agency(organ_id(agency))
        key_pair = pair.seal if kind == "seal" else pair.signer
        return load_identity(key_pair.key, key_pair.cert, chain)

    @functools.cache  # noqa: B019
    def main_pdf(self, seal: str, personal: str = "personal:A") -> bytes:
        """A main document: personally signed, then sealed by ``seal`` (``none``: no seal)."""
        data = sign_pdf(make_pdf(("Cong van so 12/SNV-VP", seal), pages=1),
                        self.identity(personal))
        if seal == "none":
            return data
        return seal_pdf(data, self.identity(seal), stamp=StampOptions(visible=False))

    @functools.cache  # noqa: B019
    def annex_pdf(self, seal: str) -> bytes:
        data = make_pdf(("Phu luc", seal), pages=1)
        return data if seal == "none" else seal_pdf(data, self.identity(seal),
                                                    stamp=StampOptions(visible=False))


def organ_id(letter: str) -> str:
    return {"A": A_ID, "B": B_ID, "C": C_ID}[letter]


def org(letter: str) -> Organization:
    return Organization(organ_id(letter), organ_name=f"Agency {letter} (demo)")


def document(from_: str = "A", to: tuple[str, ...] = ("B",),
             attachments: tuple[Attachment, ...] = (), **overrides: object) -> EdocPackage:
    return edoc(from_=org(from_), to=tuple(org(t) for t in to), attachments=attachments,
                **overrides)


def pdf(cid: str, data: bytes, name: str = "", content_type: str = "application/pdf"
        ) -> Attachment:
    return Attachment(cid, name or f"file-{cid}.signed.pdf", content_type, data)


def packaged(kit: Kit, package: object, xml: str) -> bytes:
    """The package bytes with ``xml`` = ``placeholder``, ``none`` or an identity name."""
    from dataclasses import replace

    from connector.edxml.model import StatusPackage

    if xml == "placeholder":
        if isinstance(package, EdocPackage):
            return build_package(replace(package, legacy_signature=PLACEHOLDER))
        raw = build_package(package)  # type: ignore[arg-type]
        marker = b"</edXML:MessageHeader>"
        assert marker in raw
        return raw.replace(marker, marker + PLACEHOLDER.raw_xml, 1)
    raw = build_package(package)  # type: ignore[arg-type]
    assert isinstance(package, EdocPackage | StatusPackage)
    return raw if xml == "none" else sign_package(raw, kit.identity(xml))


def list_for_b(world: World, raw: bytes) -> None:
    """A compromised hub (or a stolen account) lists crafted bytes for B, as they are."""
    assert world.hub is not None
    summary = peek(raw)
    world.hub.store.accept(
        sender=summary.from_organ_id, systemid="compromised", message_type=summary.kind,
        sha256=hashlib.sha256(raw).hexdigest(), document_id=summary.document_id,
        priority=summary.priority, status_code=summary.status_code, data=raw,
        recipients=[B_ID],
    )


def self_signed(common_name: str, organ_id: str = A_ID) -> SigningIdentity:
    """An organisation-looking certificate an attacker made: any OrganId, chosen text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, organ_id),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .sign(key, hashes.SHA256())
    )
    return SigningIdentity(private_key=key, certificate=cert, chain=())
