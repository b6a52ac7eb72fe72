"""The trust store: which CAs we trust, which certificates are revoked, and what a certificate is.

A :class:`TrustStore` is built from a folder of CA certificates (PEM or DER, any number per
file) and a folder of CRLs. Self-signed certificates in the CA folder are the trust anchors;
other CA certificates there only help to build paths (they are never anchors by themselves).
:meth:`TrustStore.validate` checks a certificate with its intermediates for a purpose: a path to
an anchor, validity periods, key usage, and revocation from the local CRLs. Fetching CRLs/OCSP
over the network is an option, off by default, with a per-request timeout.

Failures raise :class:`~connector.errors.PermanentError` with a stable reason (see
``REASONS``) and a message naming the certificate's subject.

The signer-kind rule (used by :mod:`connector.trust.pki` when issuing and by every verifier):

1. certificate policies decide first: the organisation-seal policy OID of the demo PKI or an
   ETSI legal-person policy (QCP-l, QCP-l-qscd) means *organisation*; the personal-signer
   policy OID or an ETSI natural-person policy (QCP-n, QCP-n-qscd) means *personal*;
2. otherwise the subject decides: ``givenName``, ``surname`` or ``pseudonym`` means
   *personal*; else an ``organizationIdentifier`` (2.5.4.97, holding the OrganId) means
   *organisation*; anything else is *personal* (it never satisfies a seal requirement).

The OrganId of an organisation certificate is its ``organizationIdentifier``.
This module must not sign, parse PDFs or XML, or load private keys.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import enum
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext, errors

from connector.errors import ConfigurationError, PermanentError
from connector.trust import name_prep

# A UUID-based arc (ITU-T X.667, needs no registration) for the demo PKI's policies.
DEMO_POLICY_ARC = "2.25.134397234792769685231255420654958657115"
ORGANISATION_SEAL_POLICY = x509.ObjectIdentifier(DEMO_POLICY_ARC + ".1")
PERSONAL_SIGNER_POLICY = x509.ObjectIdentifier(DEMO_POLICY_ARC + ".2")
ETSI_LEGAL_PERSON_POLICIES = frozenset({"0.4.0.194112.1.1", "0.4.0.194112.1.3"})
ETSI_NATURAL_PERSON_POLICIES = frozenset({"0.4.0.194112.1.0", "0.4.0.194112.1.2"})

# Extended key usages acceptable on a document-signing certificate, when EKU is present.
_SIGNING_EKUS = frozenset({
    "2.5.29.37.0",  # anyExtendedKeyUsage
    "1.3.6.1.5.5.7.3.4",  # emailProtection
    "1.3.6.1.5.5.7.3.36",  # documentSigning (RFC 9336)
    "1.2.840.113583.1.1.5",  # Adobe authentic documents trust
    "1.3.6.1.4.1.311.10.3.12",  # Microsoft document signing
})

REASONS = (
    "cert_expired", "cert_not_yet_valid", "cert_revoked", "untrusted_root", "wrong_key_usage",
    "wrong_certificate_kind", "revocation_unknown", "cert_invalid",
)

RevocationMode = Literal["soft-fail", "hard-fail", "require"]

name_prep.install()  # X.509 names compared without preparing the same strings again


class SignerKind(enum.StrEnum):
    PERSONAL = "personal"
    ORGANISATION = "organisation"


class Purpose(enum.StrEnum):
    """What a certificate is being checked for."""

    SIGNING = "signing"  # any document signature (personal or seal)
    SEAL = "seal"  # organisation seal only
    PERSONAL = "personal"  # personal signature only
    ENCRYPTION = "encryption"  # key transport (RSA) or key agreement (EC)


def _policies(certificate: x509.Certificate) -> set[str]:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return set()
    return {info.policy_identifier.dotted_string for info in ext.value}


def certificate_kind(certificate: x509.Certificate) -> SignerKind:
    """Personal or organisation certificate, by the rule in the module docstring."""
    policies = _policies(certificate)
    if ORGANISATION_SEAL_POLICY.dotted_string in policies or policies & ETSI_LEGAL_PERSON_POLICIES:
        return SignerKind.ORGANISATION
    if PERSONAL_SIGNER_POLICY.dotted_string in policies or policies & ETSI_NATURAL_PERSON_POLICIES:
        return SignerKind.PERSONAL
    subject = certificate.subject
    personal_oids = (NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.PSEUDONYM)
    if any(subject.get_attributes_for_oid(oid) for oid in personal_oids):
        return SignerKind.PERSONAL
    if subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER):
        return SignerKind.ORGANISATION
    return SignerKind.PERSONAL


def organ_id_of(certificate: x509.Certificate) -> str | None:
    """The OrganId carried in the subject's organizationIdentifier, if any."""
    values = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    return str(values[0].value) if values else None


_NAME_LABELS = {
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.GIVEN_NAME: "givenName",
    NameOID.SURNAME: "surname",
}


def subject_of(certificate: x509.Certificate) -> str:
    """The subject as an RFC 4514 string with readable attribute names."""
    return certificate.subject.rfc4514_string(_NAME_LABELS)


def _ku_names(certificate: x509.Certificate) -> set[str] | None:
    try:
        ku = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    names = {"digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign"}
    return {name for name in names if getattr(ku, name)}


def _ekus(certificate: x509.Certificate) -> set[str] | None:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return {oid.dotted_string for oid in ext}


def check_usage(certificate: x509.Certificate, purpose: Purpose) -> None:
    """Raise ``wrong_key_usage`` / ``wrong_certificate_kind`` unless fit for ``purpose``."""
    subject = subject_of(certificate)
    usage = _ku_names(certificate)
    if usage is None:
        raise PermanentError(
            f"certificate {subject} has no key usage extension; refusing it for {purpose}",
            reason="wrong_key_usage",
        )
    if purpose is Purpose.ENCRYPTION:
        if not usage & {"key_encipherment", "key_agreement"}:
            raise PermanentError(
                f"certificate {subject} is not for encryption (key usage {sorted(usage)})",
                reason="wrong_key_usage",
            )
        return
    if not usage & {"digital_signature", "content_commitment"}:
        raise PermanentError(
            f"certificate {subject} is not for signing (key usage {sorted(usage)})",
            reason="wrong_key_usage",
        )
    ekus = _ekus(certificate)
    if ekus is not None and not ekus & _SIGNING_EKUS:
        raise PermanentError(
            f"certificate {subject} has no document-signing extended key usage "
            f"({sorted(ekus)})",
            reason="wrong_key_usage",
        )
    kind = certificate_kind(certificate)
    wanted = {Purpose.SEAL: SignerKind.ORGANISATION, Purpose.PERSONAL: SignerKind.PERSONAL}
    if purpose in wanted and kind is not wanted[purpose]:
        raise PermanentError(
            f"certificate {subject} is a {kind} certificate, a {wanted[purpose]} one is required",
            reason="wrong_certificate_kind",
        )


@dataclass(frozen=True)
class ValidatedCertificate:
    """A certificate that passed :meth:`TrustStore.validate`, with its path (leaf first)."""

    certificate: x509.Certificate
    path: tuple[x509.Certificate, ...]
    kind: SignerKind

    @property
    def subject(self) -> str:
        return subject_of(self.certificate)


def _to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _from_asn1(certificate: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _read_files(folder: Path, what: str) -> list[tuple[Path, bytes]]:
    if not folder.is_dir():
        raise ConfigurationError(f"{what} folder {folder} does not exist", reason="trust_missing")
    return [(p, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def _parse_crl(path: Path, data: bytes) -> bytes:
    try:
        crl = (x509.load_pem_x509_crl(data) if b"-----BEGIN" in data
               else x509.load_der_x509_crl(data))
    except ValueError as exc:
        raise ConfigurationError(
            f"CRL file {path} is not a PEM or DER CRL", reason="crl_invalid"
        ) from exc
    return crl.public_bytes(serialization.Encoding.DER)


_A = TypeVar("_A", asn1_x509.Certificate, asn1_crl.CertificateList)


def _parsed_fully(value: _A) -> _A:
    """The value with every part parsed now. asn1crypto parses lazily on first access and
    that is not thread-safe; values shared by concurrent checks must be read whole first."""
    _ = value.native
    return value


class TrustStore:
    """Trust anchors, helper CA certificates and CRLs, and the checks made with them."""

    def __init__(
        self,
        ca_certificates: Sequence[x509.Certificate],
        crls: Sequence[bytes] = (),
        *,
        revocation_mode: RevocationMode = "hard-fail",
        fetch_revocation: bool = False,
        fetch_timeout: float = 10.0,
        source: str = "trust store",
    ) -> None:
        self.anchors = tuple(c for c in ca_certificates if _is_self_signed(c))
        self.helpers = tuple(c for c in ca_certificates if c not in self.anchors)
        if not self.anchors:
            raise ConfigurationError(
                f"{source} holds no self-signed CA certificate to trust", reason="trust_empty"
            )
        self.crls = tuple(crls)
        self.revocation_mode: RevocationMode = revocation_mode
        self.fetch_revocation = fetch_revocation
        self.fetch_timeout = fetch_timeout
        self.source = source
        self._bundle: Path | None = None
        self._lock = threading.Lock()
        # Set by from_dirs: the CRL folder is read again when one of its files changes.
        self.crl_dir: Path | None = None
        self._crl_signature: tuple[tuple[str, int, int], ...] = ()
        # The CRLs and fingerprint that path verdicts were last kept under (verdict_cache).
        self._verdict_basis: tuple[tuple[bytes, ...], bytes] | None = None
        self._parsed_material: tuple[tuple[bytes, ...], tuple[asn1_x509.Certificate, ...],
                                     tuple[asn1_x509.Certificate, ...],
                                     tuple[asn1_crl.CertificateList, ...]] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for worker processes: certificates travel as DER, the bundle is re-made.
        ders = [c.public_bytes(serialization.Encoding.DER) for c in (*self.anchors, *self.helpers)]
        options = {
            "revocation_mode": self.revocation_mode,
            "fetch_revocation": self.fetch_revocation,
            "fetch_timeout": self.fetch_timeout,
            "source": self.source,
        }
        return (_rebuild_store, (ders, list(self.crls), options))

    @classmethod
    def from_dirs(
        cls,
        trust_dir: str | Path,
        crl_dir: str | Path | None = None,
        **options: Any,
    ) -> TrustStore:
        """Build from a folder of CA certificates and an optional folder of CRL files."""
        from connector.trust.keys import parse_certificates

        trust_path = Path(trust_dir)
        certificates: list[x509.Certificate] = []
        for path, data in _read_files(trust_path, "trust"):
            if path.suffix.lower() not in {".pem", ".crt", ".cer", ".der"}:
                continue
            certificates.extend(parse_certificates(data, f"CA file {path}"))
        crls: list[bytes] = []
        if crl_dir is not None:
            crls = _read_crls(Path(crl_dir))
        store = cls(certificates, crls, source=f"trust store {trust_path}", **options)
        if crl_dir is not None:
            store.crl_dir = Path(crl_dir)
            store._crl_signature = _folder_signature(store.crl_dir)
        return store

    def refresh_crls(self) -> None:
        """Read the CRL folder again if a file in it changed (a new CRL needs no restart).
        A folder that cannot be read now keeps the CRLs read before."""
        if self.crl_dir is None:
            return
        try:
            signature = _folder_signature(self.crl_dir)
            if signature == self._crl_signature:
                return
            crls = _read_crls(self.crl_dir)
        except (OSError, ConfigurationError):
            return  # half-written or removed: the next look tries again
        with self._lock:
            self.crls = tuple(crls)
            self._crl_signature = signature

    def validation_context(
        self,
        *,
        extra_certificates: Iterable[x509.Certificate] = (),
        moment: dt.datetime | None = None,
    ) -> ValidationContext:
        """A pyHanko ValidationContext with these anchors, helpers, CRLs and revocation mode."""
        fetcher_backend = None
        if self.fetch_revocation:
            try:
                from pyhanko_certvalidator.fetchers.requests_fetchers import (
                    RequestsFetcherBackend,
                )
            except ImportError as exc:
                raise ConfigurationError(
                    "fetching revocation information needs the 'requests' package",
                    reason="fetch_unavailable",
                ) from exc
            fetcher_backend = RequestsFetcherBackend(per_request_timeout=self.fetch_timeout)
        self.refresh_crls()
        mode = self.revocation_mode
        if not self.crls and not self.fetch_revocation and mode == "require":
            mode = "hard-fail"  # certvalidator refuses "require" without any source
        crls = self.crls  # read once: the context and its verdicts' key see the same CRLs
        anchors, helpers, parsed_crls = self._parsed(crls)
        context = ValidationContext(
            trust_roots=list(anchors),
            other_certs=[*helpers, *(_to_asn1(c) for c in extra_certificates)],
            crls=list(parsed_crls),
            revocation_mode=mode,
            allow_fetching=self.fetch_revocation and moment is None,
            fetcher_backend=fetcher_backend,
            moment=moment,
        )
        if moment is None and not self.fetch_revocation:
            # Verdicts for now, kept until these CRLs or CA certificates change.
            from connector.trust import verdict_cache

            if self._verdict_basis is None or self._verdict_basis[0] is not crls:
                key = verdict_cache.fingerprint(self.anchors, self.helpers, crls, mode)
                self._verdict_basis = (crls, key)
            verdict_cache.register(context, self._verdict_basis[1], crls)
        return context

    def _parsed(self, crls: tuple[bytes, ...]) -> tuple[
        tuple[asn1_x509.Certificate, ...], tuple[asn1_x509.Certificate, ...],
        tuple[asn1_crl.CertificateList, ...],
    ]:
        """The CA certificates and these CRLs parsed once (asn1crypto keeps what it works out
        on a parsed value), for every validation context until the CRLs change."""
        kept = self._parsed_material
        if kept is None or kept[0] is not crls:
            kept = (crls, tuple(_parsed_fully(_to_asn1(c)) for c in self.anchors),
                    tuple(_parsed_fully(_to_asn1(c)) for c in self.helpers),
                    tuple(_parsed_fully(asn1_crl.CertificateList.load(der)) for der in crls))
            self._parsed_material = kept
        return kept[1], kept[2], kept[3]

    def validate(
        self,
        certificate: x509.Certificate,
        intermediates: Iterable[x509.Certificate] = (),
        *,
        purpose: Purpose = Purpose.SIGNING,
        moment: dt.datetime | None = None,
    ) -> ValidatedCertificate:
        """Check ``certificate`` for ``purpose``; raise PermanentError with a stable reason."""
        check_usage(certificate, purpose)
        context = self.validation_context(extra_certificates=intermediates, moment=moment)
        validator = CertificateValidator(_to_asn1(certificate), validation_context=context)
        try:
            path = asyncio.run(validator.async_validate_path())
        except (errors.PathError, errors.ValidationError) as exc:
            raise translate_validation_error(exc, subject_of(certificate)) from exc
        chain = tuple(_from_asn1(c) for c in path.iter_certs(include_root=True))
        return ValidatedCertificate(
            certificate=certificate,
            path=tuple(reversed(chain)),
            kind=certificate_kind(certificate),
        )

    def ca_pem_file(self) -> Path:
        """A PEM bundle of every CA certificate of this store (for signxml's ``ca_pem_file``).

        Written once into a private temporary folder removed when the process exits.
        """
        with self._lock:
            if self._bundle is None:
                folder = Path(tempfile.mkdtemp(prefix="connector-trust-"))
                atexit.register(shutil.rmtree, folder, True)
                bundle = folder / "ca-bundle.pem"
                bundle.write_bytes(b"".join(
                    c.public_bytes(serialization.Encoding.PEM)
                    for c in (*self.anchors, *self.helpers)
                ))
                self._bundle = bundle
            return self._bundle


def _read_crls(folder: Path) -> list[bytes]:
    return [_parse_crl(p, d) for p, d in _read_files(folder, "CRL")
            if p.suffix.lower() in {".crl", ".pem", ".der"}]


def _folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    entries = []
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            entries.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def _rebuild_store(ders: list[bytes], crls: list[bytes], options: dict[str, Any]) -> TrustStore:
    return TrustStore([x509.load_der_x509_certificate(d) for d in ders], crls, **options)


def translate_validation_error(exc: BaseException, subject: str) -> PermanentError:
    """Map a certvalidator exception to a PermanentError with a stable reason."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, PermanentError):
        return exc
    if isinstance(exc, errors.RevokedError):
        return PermanentError(f"certificate {subject} is revoked: {detail}", reason="cert_revoked")
    if isinstance(exc, errors.ExpiredError):
        return PermanentError(f"certificate {subject} has expired: {detail}", reason="cert_expired")
    if isinstance(exc, errors.NotYetValidError):
        return PermanentError(
            f"certificate {subject} is not yet valid: {detail}", reason="cert_not_yet_valid"
        )
    if isinstance(exc, errors.PathBuildingError):
        return PermanentError(
            f"certificate {subject} does not chain to a trusted root: {detail}",
            reason="untrusted_root",
        )
    if isinstance(exc, errors.InsufficientRevinfoError):
        return PermanentError(
            f"revocation status of certificate {subject} is unknown: {detail}",
            reason="revocation_unknown",
        )
    return PermanentError(f"certificate {subject} is not valid: {detail}", reason="cert_invalid")
