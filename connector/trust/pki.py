"""A complete demo PKI for tests, ``make demo`` and ``connector pki init``.

It stands in for the government CA hierarchy: a root CA, an intermediate CA, and for each demo
agency an organisation seal certificate, a personal signer certificate and an encryption
certificate, plus the negative cases every verifier must refuse (a revoked signer listed in the
intermediate's CRL, an expired certificate, a certificate with the wrong key usage, and a leaf
under a separate, untrusted root). Subjects follow the rule of
:func:`connector.trust.truststore.certificate_kind`: seals carry the agency's OrganId as
``organizationIdentifier`` and the seal policy OID; personal certificates carry ``givenName`` /
``surname`` and the personal policy OID.

Key choices keep both algorithm families exercised and creation fast: agency A seals and
encrypts with RSA-2048 (RSA-OAEP recipient), everything else is EC P-256 (agency B's ECDH
recipient). Private keys are written unencrypted with mode 0600; each seal is also exported as
PKCS#12 with a random password in a 0600 file. Nothing generated here is ever committed.
This module must not be used for production key material.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from connector.errors import ConfigurationError
from connector.trust.keys import PrivateKey
from connector.trust.truststore import ORGANISATION_SEAL_POLICY, PERSONAL_SIGNER_POLICY


@dataclass(frozen=True)
class DemoAgency:
    """One demo agency: its OrganId (data, never a code constant elsewhere), name and signer."""

    organ_id: str
    name: str
    signer_name: tuple[str, str]  # (given name, surname)
    rsa: bool  # RSA-2048 seal and encryption keys (else EC P-256)


DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    DemoAgency("000.00.31.H12", "Sở Nội vụ tỉnh Cà Mau (demo)", ("Văn An", "Nguyễn"), rsa=True),
    DemoAgency("000.00.32.H12", "Sở Tài chính tỉnh Cà Mau (demo)", ("Thị Bình", "Trần"), rsa=False),
)

# A provincial platform's organisations (config/connector-province.yaml): the demo pair and
# two more units of the same province (``connector pki init DIR --province``).
PROVINCE_AGENCIES: tuple[DemoAgency, ...] = (
    *DEMO_AGENCIES,
    DemoAgency("000.00.33.H12", "Sở Tư pháp tỉnh Cà Mau (demo)", ("Văn Cường", "Lê"), rsa=True),
    DemoAgency("000.00.34.H12", "Sở Giáo dục và Đào tạo tỉnh Cà Mau (demo)", ("Thị Dung", "Phạm"),
               rsa=False),
)

CRL_BASE_URL = "http://pki.demo.invalid/crl/"


@dataclass(frozen=True)
class KeyPair:
    """Paths of one private key (PEM, 0600) and its certificate (PEM)."""

    key: Path
    cert: Path


@dataclass(frozen=True)
class AgencyPki:
    organ_id: str
    name: str
    seal: KeyPair
    seal_p12: Path
    seal_p12_password_file: Path
    signer: KeyPair
    encryption: KeyPair
    chain: Path  # intermediates, PEM


@dataclass(frozen=True)
class DemoPki:
    """Every path of a demo PKI created by :func:`create_demo_pki`."""

    directory: Path
    root_cert: Path
    intermediate_cert: Path
    trust_dir: Path  # trust anchors (the demo root only)
    crl_dir: Path  # root.crl and intermediate.crl (DER)
    agencies: dict[str, AgencyPki]
    revoked: KeyPair  # personal signer of agency A, revoked in the intermediate CRL
    expired: KeyPair  # personal signer of agency A, expired a month ago
    wrong_usage: KeyPair  # agency A seal subject, key usage for key encipherment only
    untrusted_root_cert: Path
    untrusted: KeyPair  # agency A seal subject, issued by the untrusted root
    untrusted_dir: Path = field(default=Path())  # a trust folder holding only the untrusted root
    intermediate_key: Path = field(default=Path())  # signing CA key: issue_seal_certificate

    def agency(self, organ_id: str) -> AgencyPki:
        return self.agencies[organ_id]

    @property
    def first(self) -> AgencyPki:
        return next(iter(self.agencies.values()))

    @property
    def second(self) -> AgencyPki:
        return list(self.agencies.values())[1]


class _Issuer:
    def __init__(self, key: PrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert


def _new_key(use_rsa: bool) -> PrivateKey:
    if use_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
        "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
    )
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _write_key(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_secret(path, data)


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, *certs: x509.Certificate) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def _build(
    subject: x509.Name,
    key: PrivateKey,
    issuer: _Issuer | None,
    *,
    now: dt.datetime,
    not_before: dt.timedelta = dt.timedelta(days=-1),
    not_after: dt.timedelta = dt.timedelta(days=730),
    ca_path_length: int | None = None,
    is_ca: bool = False,
    usage: x509.KeyUsage,
    policy: x509.ObjectIdentifier | None = None,
    crl_name: str | None = None,
) -> x509.Certificate:
    signing_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if policy is not None:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False
        )
    if crl_name is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(CRL_BASE_URL + crl_name)],
            relative_name=None, reasons=None, crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _crl(issuer: _Issuer, revoked: Sequence[x509.Certificate], now: dt.datetime) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=365))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for cert in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - dt.timedelta(minutes=5))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


_SIGNING = _key_usage(digital_signature=True, content_commitment=True)
_CA = _key_usage(key_cert_sign=True, crl_sign=True)


def _seal_subject(agency: DemoAgency) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "VN"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Cà Mau"),
        (NameOID.ORGANIZATION_NAME, agency.name),
        (NameOID.ORGANIZATION_IDENTIFIER, agency.organ_id),
        (NameOID.COMMON_NAME, agency.name),
    )


def _person_subject(agency: DemoAgency, label: str = "") -> x509.Name:
    given, surname = agency.signer_name
    return _name(
        (NameOID.COUNTRY_NAME, "VN"),
        (NameOID.ORGANIZATION_NAME, agency.name),
        (NameOID.SURNAME, surname),
        (NameOID.GIVEN_NAME, given),
        (NameOID.COMMON_NAME, f"{surname} {given}{label}"),
    )


def create_demo_pki(
    directory: Path, agencies: Sequence[DemoAgency] = DEMO_AGENCIES, *, force: bool = False
) -> DemoPki:
    """Create the demo hierarchy under ``directory`` and return every path.

    ``directory`` must be absent or empty unless ``force`` (which replaces its contents).
    """
    if len(agencies) < 2:
        raise ConfigurationError("a demo PKI needs at least two agencies", reason="pki_agencies")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise ConfigurationError(
                f"{directory} is not empty; use --force to replace the demo PKI in it",
                reason="pki_exists",
            )
        shutil.rmtree(directory)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_dir, trust_dir, crl_dir = directory / "ca", directory / "trust", directory / "crl"
    negative_dir, untrusted_dir = directory / "negative", directory / "untrusted-trust"
    for folder in (ca_dir, trust_dir, crl_dir, negative_dir, untrusted_dir):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)

    root_key = _new_key(False)
    root_cert = _build(
        _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, "Demo Government CA"),
              (NameOID.COMMON_NAME, "Demo Government Root CA")),
        root_key, None, now=now, not_before=dt.timedelta(days=-1100),
        not_after=dt.timedelta(days=3650), is_ca=True, ca_path_length=1, usage=_CA,
    )
    root = _Issuer(root_key, root_cert)
    inter_key = _new_key(False)
    inter_cert = _build(
        _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, "Demo Government CA"),
              (NameOID.COMMON_NAME, "Demo Government Signing CA")),
        inter_key, root, now=now, not_before=dt.timedelta(days=-1000),
        not_after=dt.timedelta(days=3000), is_ca=True, ca_path_length=0, usage=_CA,
        crl_name="root.crl",
    )
    inter = _Issuer(inter_key, inter_cert)
    _write_cert(ca_dir / "root.pem", root_cert)
    _write_cert(trust_dir / "root.pem", root_cert)
    chain_path = ca_dir / "intermediate.pem"
    _write_cert(chain_path, inter_cert)
    _write_key(ca_dir / "intermediate.key", inter_key)  # demo only: certificates for token keys

    def issue(path_stem: Path, subject: x509.Name, *, use_rsa: bool = False,
              issuer: _Issuer = inter, **kwargs: object) -> KeyPair:
        key = _new_key(use_rsa)
        crl_name = "intermediate.crl" if issuer is inter else None
        cert = _build(subject, key, issuer, now=now, crl_name=crl_name, **kwargs)  # type: ignore[arg-type]
        pair = KeyPair(path_stem.with_suffix(".key"), path_stem.with_suffix(".pem"))
        _write_key(pair.key, key)
        _write_cert(pair.cert, cert)
        return pair

    agency_files: dict[str, AgencyPki] = {}
    for agency in agencies:
        folder = directory / "agencies" / agency.organ_id
        folder.mkdir(parents=True, exist_ok=True)
        seal = issue(folder / "seal", _seal_subject(agency), use_rsa=agency.rsa,
                     usage=_SIGNING, policy=ORGANISATION_SEAL_POLICY)
        signer = issue(folder / "signer", _person_subject(agency), usage=_SIGNING,
                       policy=PERSONAL_SIGNER_POLICY)
        encryption_usage = (
            _key_usage(key_encipherment=True) if agency.rsa else _key_usage(key_agreement=True)
        )
        encryption = issue(folder / "encryption", _seal_subject(agency), use_rsa=agency.rsa,
                           usage=encryption_usage)
        p12_path, p12_password = folder / "seal.p12", folder / "seal.p12.password"
        password = secrets.token_urlsafe(18)
        _write_secret(p12_password, password.encode() + b"\n")
        seal_key = serialization.load_pem_private_key(seal.key.read_bytes(), None)
        assert isinstance(seal_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        _write_secret(p12_path, pkcs12.serialize_key_and_certificates(
            b"seal", seal_key, x509.load_pem_x509_certificate(seal.cert.read_bytes()),
            [inter_cert], serialization.BestAvailableEncryption(password.encode()),
        ))
        agency_files[agency.organ_id] = AgencyPki(
            organ_id=agency.organ_id, name=agency.name, seal=seal, seal_p12=p12_path,
            seal_p12_password_file=p12_password, signer=signer, encryption=encryption,
            chain=chain_path,
        )

    first = agencies[0]
    revoked = issue(negative_dir / "revoked", _person_subject(first, " (revoked)"),
                    usage=_SIGNING, policy=PERSONAL_SIGNER_POLICY)
    expired = issue(negative_dir / "expired", _person_subject(first, " (expired)"),
                    usage=_SIGNING, policy=PERSONAL_SIGNER_POLICY,
                    not_before=dt.timedelta(days=-400), not_after=dt.timedelta(days=-30))
    wrong_usage = issue(negative_dir / "wrong-usage", _seal_subject(first),
                        usage=_key_usage(key_encipherment=True, data_encipherment=True),
                        policy=ORGANISATION_SEAL_POLICY)
    untrusted_root_key = _new_key(False)
    untrusted_root_cert = _build(
        _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.COMMON_NAME, "Untrusted Look-alike Root CA")),
        untrusted_root_key, None, now=now, not_before=dt.timedelta(days=-10),
        is_ca=True, ca_path_length=0, usage=_CA,
    )
    untrusted_root_path = negative_dir / "untrusted-root.pem"
    _write_cert(untrusted_root_path, untrusted_root_cert)
    _write_cert(untrusted_dir / "untrusted-root.pem", untrusted_root_cert)
    untrusted = issue(negative_dir / "untrusted", _seal_subject(first), usage=_SIGNING,
                      policy=ORGANISATION_SEAL_POLICY,
                      issuer=_Issuer(untrusted_root_key, untrusted_root_cert))

    revoked_cert = x509.load_pem_x509_certificate(revoked.cert.read_bytes())
    (crl_dir / "intermediate.crl").write_bytes(_crl(inter, [revoked_cert], now))
    (crl_dir / "root.crl").write_bytes(_crl(root, [], now))
    return DemoPki(
        directory=directory, root_cert=ca_dir / "root.pem", intermediate_cert=chain_path,
        trust_dir=trust_dir, crl_dir=crl_dir, agencies=agency_files, revoked=revoked,
        expired=expired, wrong_usage=wrong_usage, untrusted_root_cert=untrusted_root_path,
        untrusted=untrusted, untrusted_dir=untrusted_dir,
        intermediate_key=ca_dir / "intermediate.key",
    )


def issue_seal_certificate(
    pki: DemoPki, agency: DemoAgency, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
) -> x509.Certificate:
    """An organisation seal certificate from the demo signing CA for a key made elsewhere
    (e.g. inside a PKCS#11 token, whose private key cannot be read)."""
    inter_key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    assert isinstance(inter_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    inter = _Issuer(inter_key, x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes()))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return _build(_seal_subject(agency), _PublicOnly(public_key), inter, now=now,  # type: ignore[arg-type]
                  usage=_SIGNING, policy=ORGANISATION_SEAL_POLICY, crl_name="intermediate.crl")


class _PublicOnly:
    """What :func:`_build` needs of a subject key when only its public half is known."""

    def __init__(self, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> None:
        self._public = public_key

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self._public
