"""The package signature: an enveloped W3C XML-DSig over the whole edXML package.

Shape (what :func:`sign_package` emits and :func:`verify_package` insists on):

* exactly one ``ds:Signature`` (``http://www.w3.org/2000/09/xmldsig#``), the last child of
  ``/edXML/edXMLEnvelope/edXMLHeader``;
* ``SignedInfo``: exclusive c14n, ``rsa-sha256``/``ecdsa-sha256`` (SHA-384/512 variants are
  accepted), exactly one ``Reference URI=""`` whose transforms are exactly
  enveloped-signature then exclusive c14n, digest SHA-256 (or SHA-384/512) — so the digest
  covers every byte of meaning in the package, ``AttachmentEncoded`` included;
* ``KeyInfo/X509Data``: the signing certificate first, then its intermediates.

Exclusive c14n keeps the package's default namespace (``xmlns="…QCVN_102_2016"``) out of the
canonical ``SignedInfo``, the very place where default namespaces have broken signatures
between implementations; the tests check every signature with xmlsec1 on real packages.

Signing replaces a legacy placeholder: a ``Signature`` element in the QCVN namespace (what the
national axis library writes, never verified by anyone) is removed and the real signature
takes its place, so a signed package carries one signature only. An earlier XML-DSig in the
header is replaced as well (a relay re-signs what it changed).

Verification, in order: the package shape around the signature (one envelope, one header,
one XML-DSig and it sits in the header, no ``Object``, no duplicated ``Id`` values: wrapping
attempts are refused as ``signature_wrapping``), the pinned algorithms
(``algorithm_not_allowed``, e.g. SHA-1), then signxml with our CA bundle and a pinned
:class:`signxml.SignatureConfiguration` (``signature_invalid``), then the signer's certificate
against the trust store (its reasons: ``cert_expired``, ``cert_revoked``, ``untrusted_root``,
``wrong_key_usage``…; ``untrusted_signer`` when no usable certificate is given).

Verified bytes: :attr:`VerifiedPackage.data` is signxml's ``signed_data``, i.e. the exclusive
canonical form of the package without its signature: the very octets whose digest was checked
(re-hashed here against ``DigestValue`` as a second check). Nothing is re-serialised and
unsigned parts (comments, the signature, stray bytes) cannot reach later stages. A package
accepted *without* an XML-DSig (legacy placeholder or unsigned, by policy) hands on the input
bytes minus stray leading bytes, with the decision recorded.

This module must not decide policy defaults for peers (callers pass them) nor parse edXML
content beyond locating the header.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import Criticality, ExtensionPolicy
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException
from signxml.signer import XMLSigner
from signxml.verifier import SignatureConfiguration, XMLVerifier

from connector.edxml.model import NS, XMLDSIG_NS
from connector.edxml.xmlsafe import parse_untrusted, to_utf8
from connector.errors import PermanentError
from connector.printable import printable
from connector.trust.truststore import (
    Purpose,
    SignerKind,
    TrustStore,
    organ_id_of,
    subject_of,
)

__all__ = ["Decision", "PackageSigner", "VerifiedPackage", "sign_package", "verify_package"]

EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
ALLOWED_SIGNATURE_METHODS = frozenset({
    SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512,
    SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384, SignatureMethod.ECDSA_SHA512,
})
ALLOWED_DIGESTS = {
    DigestAlgorithm.SHA256.value: hashlib.sha256,
    DigestAlgorithm.SHA384.value: hashlib.sha384,
    DigestAlgorithm.SHA512.value: hashlib.sha512,
}
_SIGNATURE_CHILDREN = ("SignedInfo", "SignatureValue", "KeyInfo")
_ID_ATTRIBUTES = ("Id", "ID", "id")
_LOCATION = f"./{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader/"

LegacyPolicy = Literal["accept", "refuse"]


def _signing_key_usage(_policy: object, _certificate: object, usage: x509.KeyUsage) -> None:
    # digitalSignature or nonRepudiation: the trust store's rule for signing certificates.
    # Also keeps a CA certificate from being taken for the signer.
    if not (usage.digital_signature or usage.content_commitment):
        raise ValueError("certificate KeyUsage allows neither digitalSignature nor "
                         "nonRepudiation")


_CA_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, None)
_SIGNER_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.KeyUsage, Criticality.AGNOSTIC, _signing_key_usage)


def _ds(name: str) -> str:
    return f"{{{XMLDSIG_NS}}}{name}"


def _qcvn(name: str) -> str:
    return f"{{{NS}}}{name}"


def _parser() -> etree.XMLParser:
    # The settings of connector.edxml.xmlsafe, for signxml's own (re)parsing; a fresh parser
    # per use because lxml parsers are not thread-safe.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=True, remove_blank_text=False, collect_ids=False)


class SigningMaterial(Protocol):
    """What signing needs (``connector.trust.keys.SigningIdentity`` fits)."""

    @property
    def private_key(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey: ...
    @property
    def certificate(self) -> x509.Certificate: ...
    @property
    def chain(self) -> tuple[x509.Certificate, ...]: ...


@dataclass(frozen=True)
class Decision:
    """One recorded verification decision: a stable ``code`` and a sentence for people."""

    code: str
    message: str


@dataclass(frozen=True)
class VerifiedPackage:
    """The outcome of :func:`verify_package`; only ``data`` may be used downstream."""

    data: bytes
    signed: bool
    signer: x509.Certificate | None = None
    signer_path: tuple[x509.Certificate, ...] = ()
    signer_kind: SignerKind | None = None
    signer_organ_id: str | None = None
    signature_method: str | None = None
    digest_method: str | None = None
    decisions: tuple[Decision, ...] = ()

    @property
    def signer_subject(self) -> str | None:
        return subject_of(self.signer) if self.signer is not None else None


# ------------------------------------------------------------------------------------ sign


class PackageSigner:
    """Signs packages with one identity; the loaded key is kept for the signer's life.

    The key may live in a PKCS#11 token (:mod:`connector.trust.pkcs11_keys`): signxml then
    hands the canonical ``SignedInfo`` to the token, which computes ``SignatureValue``.
    """

    def __init__(self, identity: SigningMaterial) -> None:
        key = identity.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            method = SignatureMethod.RSA_SHA256
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            method = SignatureMethod.ECDSA_SHA256
        else:  # pragma: no cover - guarded by the type, kept for duck-typed identities
            raise TypeError(f"unsupported signing key {type(key).__name__}")
        self._key = key
        self._certs = [identity.certificate, *identity.chain]
        self.method = method
        self.subject = subject_of(identity.certificate)

    def sign(self, package_bytes: bytes) -> bytes:
        """Return the package with an enveloped XML-DSig as the last child of edXMLHeader."""
        root = parse_untrusted(package_bytes)
        header = _locate_header(root)
        stray = [s for s in root.iter(_ds("Signature")) if s.getparent() is not header]
        if stray:
            raise PermanentError(
                f"package already carries an XML-DSig outside edXMLHeader (line "
                f"{stray[0].sourceline}); refusing to sign it", reason="signature_wrapping")
        for old in [*header.findall(_qcvn("Signature")), *header.findall(_ds("Signature"))]:
            _remove_keeping_whitespace(old)
        placeholder = etree.SubElement(header, _ds("Signature"), nsmap={"ds": XMLDSIG_NS})
        placeholder.set("Id", "placeholder")
        previous = placeholder.getprevious()
        if previous is not None:
            placeholder.tail, previous.tail = previous.tail, header.text
        signer = XMLSigner(signature_algorithm=self.method, digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=EXC_C14N)
        signer._parser = _parser()  # huge_tree for 20 MB attachments; same hardening
        try:
            signed = signer.sign(root, key=self._key, cert=self._certs)
        except (SignXMLException, ValueError) as exc:
            raise PermanentError(f"cannot sign package as {self.subject}: {exc}",
                                 reason="sign_failed") from exc
        data: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
        return data


def sign_package(package_bytes: bytes, identity: SigningMaterial) -> bytes:
    """Sign one package (see :class:`PackageSigner` to sign many with the same identity)."""
    return PackageSigner(identity).sign(package_bytes)


def _remove_keeping_whitespace(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    previous = element.getprevious()
    if previous is not None:
        previous.tail = element.tail if element.tail is not None else previous.tail
    else:
        parent.text = element.tail if element.tail is not None else parent.text
    parent.remove(element)


# ---------------------------------------------------------------------------------- verify


def verify_package(
    data: bytes,
    trust: TrustStore,
    *,
    legacy_policy: LegacyPolicy,
    unsigned_policy: LegacyPolicy = "refuse",
    purpose: Purpose = Purpose.SIGNING,
    expected_organ_id: str | None = None,
    at: dt.datetime | None = None,
) -> VerifiedPackage:
    """Verify the package's XML-DSig and return only what it covers (see module docstring).
    A damaged signature that a library trips over (asn1 ValueError in a KeyInfo certificate,
    UnicodeDecodeError in its names, lxml on its canonical form) is refused as
    ``signature_invalid``, never an exception that leaves the package retried."""
    try:
        return _verify_package(data, trust, legacy_policy=legacy_policy,
                               unsigned_policy=unsigned_policy, purpose=purpose,
                               expected_organ_id=expected_organ_id, at=at)
    except (ValueError, UnicodeError, TypeError, KeyError, IndexError, AttributeError,
            etree.LxmlError) as exc:
        raise PermanentError(
            f"the XML signature cannot be read ({type(exc).__name__}: "
            f"{printable(str(exc), 200)})", reason="signature_invalid", stage="xml_verify",
        ) from None


def _verify_package(
    data: bytes,
    trust: TrustStore,
    *,
    legacy_policy: LegacyPolicy,
    unsigned_policy: LegacyPolicy,
    purpose: Purpose,
    expected_organ_id: str | None,
    at: dt.datetime | None,
) -> VerifiedPackage:
    """Verify the package's XML-DSig and return only what it covers (see module docstring).

    ``legacy_policy`` decides for a package whose only signature is the QCVN placeholder,
    ``unsigned_policy`` for one with no signature at all; ``expected_organ_id`` (the sender's
    OrganId) is compared with the signer certificate's organizationIdentifier; ``at``
    verifies at another moment than now.
    """
    # UTF-8 without stray bytes, whatever encoding the peer declared (the canonical form that
    # is digested is UTF-8 anyway): signxml parses exactly what parse_untrusted checked.
    body = to_utf8(bytes(data))
    root = parse_untrusted(body)
    header = _locate_header(root)
    signatures = list(root.iter(_ds("Signature")))
    legacy = header.findall(_qcvn("Signature"))
    if not signatures:
        return _without_xmldsig(body, legacy_present=bool(legacy), legacy_policy=legacy_policy,
                                unsigned_policy=unsigned_policy)
    decisions: list[Decision] = []
    if legacy:
        decisions.append(Decision(
            "legacy_placeholder_ignored",
            "a legacy QCVN Signature placeholder is present next to the XML-DSig; it is not "
            "verified and is covered by the XML-DSig like any other content"))
    signature = _check_shape(root, header, signatures)
    signature_method, digest_method, digest_value = _check_signed_info(signature)
    certificates = _key_info_certificates(signature)

    config = SignatureConfiguration(
        require_x509=True, location=_LOCATION, expect_references=1,
        signature_methods=ALLOWED_SIGNATURE_METHODS,
        digest_algorithms=frozenset(DigestAlgorithm(uri) for uri in ALLOWED_DIGESTS),
        verification_time=at,
    )
    try:
        # The chain must reach one of our CAs here, but the extension rules are the trust
        # store's (RFC 5280 path validation, key usage, CRLs, right below): signxml's default
        # Web-PKI CA profile would refuse government CAs that the trust store accepts.
        result = XMLVerifier().verify(
            body, ca_pem_file=str(trust.ca_pem_file()), expect_config=config, parser=_parser(),
            ee_policy=_SIGNER_POLICY, ca_policy=_CA_POLICY,
        )
    except InvalidCertificate as exc:
        # signxml's chain check failed: let the trust store say precisely why.
        trust.validate(certificates[0], certificates[1:], purpose=purpose, moment=at)
        raise PermanentError(f"signing certificate {subject_of(certificates[0])} is not "
                             f"trusted: {exc}", reason="untrusted_signer") from exc
    except InvalidDigest as exc:
        raise PermanentError(
            "package content was changed after signing (reference digest mismatch): "
            f"{exc}", reason="signature_invalid") from exc
    except (SignXMLException, ValueError, etree.DocumentInvalid) as exc:
        detail = str(exc).rstrip(": ") or type(exc).__name__
        raise PermanentError(
            f"XML signature is not valid ({detail}): SignatureValue or SignedInfo was altered "
            "or made with another key", reason="signature_invalid") from exc
    assert not isinstance(result, list)  # expect_references=1

    if ALLOWED_DIGESTS[digest_method](result.signed_data).digest() != digest_value:
        raise PermanentError("verified bytes do not match the signed digest",
                             reason="signature_invalid")
    signer = _signing_certificate(certificates, result.signature_key)
    validated = trust.validate(signer, [c for c in certificates if c is not signer],
                               purpose=purpose, moment=at)
    organ_id = organ_id_of(signer)
    if expected_organ_id is not None and organ_id != expected_organ_id:
        raise PermanentError(
            f"package is signed by {subject_of(signer)} (OrganId {organ_id}), not by the "
            f"sender {expected_organ_id}", reason="signer_mismatch")
    decisions.append(Decision("xmldsig_verified", f"XML-DSig verified; signed by "
                              f"{subject_of(signer)}"))
    return VerifiedPackage(
        data=result.signed_data, signed=True, signer=signer, signer_path=validated.path,
        signer_kind=validated.kind, signer_organ_id=organ_id, signature_method=signature_method,
        digest_method=digest_method, decisions=tuple(decisions),
    )


def _without_xmldsig(body: bytes, *, legacy_present: bool, legacy_policy: LegacyPolicy,
                     unsigned_policy: LegacyPolicy) -> VerifiedPackage:
    if legacy_present:
        if legacy_policy != "accept":
            raise PermanentError(
                "package carries only a legacy QCVN Signature placeholder (no XML-DSig) and "
                "the policy for this peer refuses it", reason="legacy_signature_refused")
        decision = Decision("legacy_placeholder_accepted",
                            "no XML-DSig; the legacy QCVN Signature placeholder was accepted "
                            "unverified by policy")
    else:
        if unsigned_policy != "accept":
            raise PermanentError("package has no XML signature (no ds:Signature in "
                                 "edXMLHeader)", reason="signature_missing")
        decision = Decision("unsigned_accepted", "no signature at all; accepted by policy")
    return VerifiedPackage(data=body, signed=False, decisions=(decision,))


def _locate_header(root: etree._Element) -> etree._Element:
    if root.tag != _qcvn("edXML"):
        raise PermanentError(f"root element is {root.tag}, expected {{{NS}}}edXML",
                             reason="package_malformed")
    envelopes = root.findall(_qcvn("edXMLEnvelope"))
    headers = envelopes[0].findall(_qcvn("edXMLHeader")) if len(envelopes) == 1 else []
    if len(envelopes) != 1 or len(headers) != 1:
        found = (f"{len(headers)} edXMLHeader elements" if len(envelopes) == 1
                 else f"{len(envelopes)} edXMLEnvelope elements")
        raise PermanentError(
            f"package must have exactly one edXMLEnvelope with one edXMLHeader; found {found}",
            reason="signature_wrapping")
    header: etree._Element = headers[0]
    return header


def _check_shape(root: etree._Element, header: etree._Element,
                 signatures: Sequence[etree._Element]) -> etree._Element:
    if len(signatures) != 1:
        lines = ", ".join(str(s.sourceline) for s in signatures)
        raise PermanentError(f"{len(signatures)} XML-DSig signatures (lines {lines}); exactly "
                             "one, in edXMLHeader, is allowed", reason="signature_wrapping")
    signature = signatures[0]
    if signature.getparent() is not header:
        raise PermanentError(
            f"XML-DSig is at {_path(signature)} (line "
            f"{signature.sourceline}), not in /edXML/edXMLEnvelope/edXMLHeader",
            reason="signature_wrapping")
    children = [c for c in signature if isinstance(c.tag, str)]
    names = [etree.QName(c).localname if etree.QName(c).namespace == XMLDSIG_NS else c.tag
             for c in children]
    if names not in (list(_SIGNATURE_CHILDREN), list(_SIGNATURE_CHILDREN[:2])):
        raise PermanentError(f"XML-DSig children are {names}; only SignedInfo, SignatureValue "
                             "and KeyInfo are allowed (no Object)", reason="signature_wrapping")
    seen = Counter(
        value for element in root.iter() if isinstance(element.tag, str)
        for name, value in element.attrib.items()
        if etree.QName(name).localname in _ID_ATTRIBUTES
    )
    duplicated = sorted(value for value, count in seen.items() if count > 1)
    if duplicated:
        raise PermanentError(f"duplicated Id values {duplicated} in the package",
                             reason="signature_wrapping")
    return signature


def _path(element: etree._Element) -> str:
    names = [etree.QName(e).localname for e in (*reversed(list(element.iterancestors())),
                                                 element)]
    return "/" + "/".join(names)


def _check_signed_info(signature: etree._Element) -> tuple[str, str, bytes]:
    signed_info = signature.find(_ds("SignedInfo"))
    assert signed_info is not None
    c14n = _algorithm(signed_info, "CanonicalizationMethod")
    if c14n != EXC_C14N:
        raise PermanentError(f"SignedInfo canonicalization {c14n} is not allowed (exclusive "
                             "c14n only)", reason="algorithm_not_allowed")
    method = _algorithm(signed_info, "SignatureMethod")
    if method not in {m.value for m in ALLOWED_SIGNATURE_METHODS}:
        raise PermanentError(f"signature method {method} is not allowed (RSA or ECDSA with "
                             "SHA-256 or stronger only)", reason="algorithm_not_allowed")
    references = signed_info.findall(_ds("Reference"))
    if len(references) != 1:
        raise PermanentError(f"{len(references)} signature references; exactly one "
                             "(URI=\"\", the whole package) is allowed",
                             reason="signature_wrapping")
    reference = references[0]
    if reference.get("URI") != "":
        raise PermanentError(f"signature reference URI is {reference.get('URI')!r}; only "
                             "URI=\"\" (the whole package) is allowed", reason="signature_wrapping")
    transforms = [t.get("Algorithm") for t in reference.findall(f"{_ds('Transforms')}/"
                                                                  f"{_ds('Transform')}")]
    if transforms != [ENVELOPED, EXC_C14N]:
        raise PermanentError(f"reference transforms {transforms} are not allowed (exactly "
                             "enveloped-signature, exclusive c14n)", reason="algorithm_not_allowed")
    digest = _algorithm(reference, "DigestMethod")
    if digest not in ALLOWED_DIGESTS:
        raise PermanentError(f"digest {digest} is not allowed (SHA-256 or stronger only)",
                             reason="algorithm_not_allowed")
    value = reference.findtext(_ds("DigestValue")) or ""
    try:
        digest_value = base64.b64decode("".join(value.split()), validate=True)
    except ValueError:
        raise PermanentError("DigestValue is not base64", reason="signature_invalid") from None
    return method, digest, digest_value


def _algorithm(parent: etree._Element, name: str) -> str:
    element = parent.find(_ds(name))
    if element is None or not element.get("Algorithm"):
        raise PermanentError(f"XML-DSig {name} is missing", reason="signature_invalid")
    return str(element.get("Algorithm"))


def _key_info_certificates(signature: etree._Element) -> list[x509.Certificate]:
    texts = [el.text or "" for el in signature.iterfind(
        f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")]
    if not texts:
        raise PermanentError("XML-DSig KeyInfo carries no X509Certificate: the signer cannot "
                             "be identified", reason="untrusted_signer")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode("".join(t.split())))
                for t in texts]
    except ValueError as exc:
        raise PermanentError(f"KeyInfo certificate is not valid DER: {exc}",
                             reason="untrusted_signer") from None


def _signing_certificate(certificates: Sequence[x509.Certificate],
                         signature_key_pem: bytes) -> x509.Certificate:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    for certificate in certificates:
        if certificate.public_key().public_bytes(serialization.Encoding.PEM, spki) == (
                signature_key_pem):
            return certificate
    raise PermanentError("no KeyInfo certificate holds the key that verified the signature",
                         reason="untrusted_signer")
