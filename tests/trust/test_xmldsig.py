"""Package XML-DSig: xmlsec1 cross-checks on real packages, pinned verification, wrapping."""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from connector.edxml.builder import build_package
from connector.edxml.model import NS, XMLDSIG_NS, EdocPackage
from connector.edxml.parser import parse_package
from connector.errors import PermanentError
from connector.trust import xmldsig
from connector.trust.keys import SigningIdentity, load_identity
from connector.trust.pki import DemoPki, KeyPair
from connector.trust.truststore import SignerKind, TrustStore
from tests.edxml.factories import edoc
from tests.samples import sample_params, sample_paths

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")
DS = f"{{{XMLDSIG_NS}}}"
Q = f"{{{NS}}}"


def _identity(pki: DemoPki, pair: KeyPair, *chain: Path) -> SigningIdentity:
    return load_identity(pair.key, pair.cert, list(chain or [pki.intermediate_cert]))


@pytest.fixture(scope="module")
def seal_a(demo_pki: DemoPki) -> SigningIdentity:
    return _identity(demo_pki, demo_pki.first.seal)  # RSA-2048


@pytest.fixture(scope="module")
def seal_b(demo_pki: DemoPki) -> SigningIdentity:
    return _identity(demo_pki, demo_pki.second.seal)  # EC P-256


@pytest.fixture(scope="module")
def real_package() -> bytes:
    paths = sample_paths("edoc_update.edxml")
    if not paths:
        pytest.skip("national axis samples (../shared) are absent")
    return paths[0].read_bytes()


@pytest.fixture(scope="module")
def signed_real(real_package: bytes, seal_a: SigningIdentity) -> bytes:
    return xmldsig.sign_package(real_package, seal_a)


def _xmlsec1(pki: DemoPki, signed: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None
    target = tmp_path / "signed.edxml"
    target.write_bytes(signed)
    # URI="" references the whole document, so no --id-attr is needed.
    return subprocess.run(
        [XMLSEC1, "--verify", "--trusted-pem", str(pki.root_cert),
         "--untrusted-pem", str(pki.intermediate_cert), str(target)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def _reason(data: bytes, trust: TrustStore, **options: object) -> str:
    with pytest.raises(PermanentError) as info:
        xmldsig.verify_package(data, trust, legacy_policy="refuse", **options)  # type: ignore[arg-type]
    return info.value.reason


def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(huge_tree=True))


def _bytes(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data


def _header(root: etree._Element) -> etree._Element:
    header = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader")
    assert header is not None
    return header


# --------------------------------------------------------------- independent cross-check


@needs_xmlsec1
@pytest.mark.tools
@pytest.mark.parametrize("sample", sample_params())
def test_xmlsec1_accepts_every_signed_sample(sample: Path, demo_pki: DemoPki,
                                             seal_a: SigningIdentity, tmp_path: Path) -> None:
    signed = xmldsig.sign_package(sample.read_bytes(), seal_a)
    result = _xmlsec1(demo_pki, signed, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stderr


@needs_xmlsec1
@pytest.mark.tools
def test_xmlsec1_accepts_ecdsa_signature(real_package: bytes, demo_pki: DemoPki,
                                         seal_b: SigningIdentity, tmp_path: Path) -> None:
    signed = xmldsig.sign_package(real_package, seal_b)
    assert b"ecdsa-sha256" in signed
    result = _xmlsec1(demo_pki, signed, tmp_path)
    assert result.returncode == 0, result.stderr


@needs_xmlsec1
@pytest.mark.tools
@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "zipped"])
def test_xmlsec1_accepts_built_packages(zipped: bool, demo_pki: DemoPki, seal_a: SigningIdentity,
                                        trust_store: TrustStore, tmp_path: Path) -> None:
    package = build_package(edoc(), zip_attachments=zipped)
    signed = xmldsig.sign_package(package, seal_a)
    result = _xmlsec1(demo_pki, signed, tmp_path)
    assert result.returncode == 0, result.stderr
    verified = xmldsig.verify_package(signed, trust_store, legacy_policy="refuse")
    parsed = parse_package(verified.data)
    assert isinstance(parsed, EdocPackage)
    assert parsed.attachments == parse_package(package).attachments  # type: ignore[union-attr]


def _tamper_subject(signed: bytes) -> bytes:
    start = signed.index(b"<edXML:Subject>") + len(b"<edXML:Subject>")
    return signed[:start] + b"X" + signed[start + 1:]


def _tamper_attachment(signed: bytes) -> bytes:
    marker = b"ContentTransferEncoded"
    start = signed.index(b">", signed.index(marker)) + 200
    replacement = b"B" if signed[start:start + 1] != b"B" else b"C"
    return signed[:start] + replacement + signed[start + 1:]


def _tamper_manifest(signed: bytes) -> bytes:
    start = signed.index(b"<edXML:AttachmentName>") + len(b"<edXML:AttachmentName>")
    return signed[:start] + b"Z" + signed[start + 1:]


@needs_xmlsec1
@pytest.mark.tools
@pytest.mark.parametrize("tamper", [_tamper_subject, _tamper_attachment, _tamper_manifest],
                         ids=["subject", "attachment", "manifest"])
def test_any_changed_byte_is_rejected_by_both(tamper: object, signed_real: bytes,
                                              demo_pki: DemoPki, trust_store: TrustStore,
                                              tmp_path: Path) -> None:
    assert callable(tamper)
    tampered = tamper(signed_real)
    assert tampered != signed_real
    assert _xmlsec1(demo_pki, tampered, tmp_path).returncode != 0
    assert _reason(tampered, trust_store) == "signature_invalid"


# ----------------------------------------------------------------------- our verification


def test_verify_returns_only_the_signed_bytes(signed_real: bytes, real_package: bytes,
                                              trust_store: TrustStore) -> None:
    verified = xmldsig.verify_package(signed_real, trust_store, legacy_policy="refuse",
                                      expected_organ_id="000.00.31.H12")
    assert verified.signed
    assert verified.signer_kind is SignerKind.ORGANISATION
    assert verified.signer_organ_id == "000.00.31.H12"
    assert verified.signature_method is not None and "rsa-sha256" in verified.signature_method
    assert [d.code for d in verified.decisions] == ["xmldsig_verified"]
    assert b"Signature" not in verified.data  # enveloped signature excluded, legacy removed
    original = parse_package(real_package)
    again = parse_package(verified.data)
    assert isinstance(original, EdocPackage) and isinstance(again, EdocPackage)
    assert again.subject == original.subject
    assert again.attachments == original.attachments


def test_signing_replaces_the_legacy_placeholder(signed_real: bytes, real_package: bytes) -> None:
    assert real_package.count(b"<Signature>") == 1
    header = _header(_tree(signed_real))
    assert header.findall(f"{Q}Signature") == []
    signatures = header.findall(f"{DS}Signature")
    assert len(signatures) == 1
    assert [c for c in header if isinstance(c.tag, str)][-1] is signatures[0]
    certificates = signatures[0].findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert len(certificates) == 2  # signer + intermediate


def test_ecdsa_signature_verifies(real_package: bytes, seal_b: SigningIdentity,
                                  trust_store: TrustStore) -> None:
    verified = xmldsig.verify_package(xmldsig.sign_package(real_package, seal_b), trust_store,
                                      legacy_policy="refuse")
    assert verified.signer_organ_id == "000.00.32.H12"


def test_resigning_replaces_the_previous_signature(signed_real: bytes, seal_b: SigningIdentity,
                                                   trust_store: TrustStore) -> None:
    resigned = xmldsig.sign_package(signed_real, seal_b)
    assert resigned.count(b"<ds:Signature ") == 1
    assert xmldsig.verify_package(resigned, trust_store, legacy_policy="refuse").signed


def test_injected_comment_never_reaches_later_stages(signed_real: bytes,
                                                     trust_store: TrustStore) -> None:
    start = signed_real.index(b"<edXML:OrganId>") + len(b"<edXML:OrganId>") + 3
    with_comment = signed_real[:start] + b"<!-- injected -->" + signed_real[start:]
    verified = xmldsig.verify_package(with_comment, trust_store, legacy_policy="refuse")
    assert b"injected" not in verified.data  # comments are not signed by exc-c14n


def test_signer_other_than_sender_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    assert _reason(signed_real, trust_store, expected_organ_id="000.00.32.H12") == (
        "signer_mismatch")


# -------------------------------------------------------------------- legacy and unsigned


def test_legacy_placeholder_by_policy(real_package: bytes, trust_store: TrustStore) -> None:
    assert _reason(real_package, trust_store) == "legacy_signature_refused"
    accepted = xmldsig.verify_package(real_package, trust_store, legacy_policy="accept")
    assert not accepted.signed and accepted.signer is None
    assert [d.code for d in accepted.decisions] == ["legacy_placeholder_accepted"]
    assert accepted.data == real_package


def test_stray_prefix_is_dropped_from_legacy_package(trust_store: TrustStore) -> None:
    paths = sample_paths("edoc_new.edxml")
    if not paths:
        pytest.skip("national axis samples (../shared) are absent")
    raw = paths[0].read_bytes()
    accepted = xmldsig.verify_package(raw, trust_store, legacy_policy="accept")
    assert raw.startswith(b"1212") and accepted.data == raw[4:]


def test_unsigned_package_by_policy(trust_store: TrustStore) -> None:
    package = build_package(edoc())
    assert _reason(package, trust_store) == "signature_missing"
    accepted = xmldsig.verify_package(package, trust_store, legacy_policy="refuse",
                                      unsigned_policy="accept")
    assert [d.code for d in accepted.decisions] == ["unsigned_accepted"]


# --------------------------------------------------------------------- signature wrapping


def test_moved_signature_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    # The enveloped digest would still match wherever the signature sits: only the pin stops it.
    for destination in ("root", "body"):
        root = _tree(signed_real)
        signature = _header(root).find(f"{DS}Signature")
        assert signature is not None
        target = root if destination == "root" else root.find(f"{Q}edXMLEnvelope/{Q}edXMLBody")
        assert target is not None
        target.append(signature)
        assert _reason(_bytes(root), trust_store) == "signature_wrapping"


def test_duplicated_ids_are_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    header = _header(root)
    header.set("Id", "doc")
    body = root.find(f"{Q}edXMLEnvelope/{Q}edXMLBody")
    assert body is not None
    body.set("Id", "doc")
    reference = header.find(f"{DS}Signature/{DS}SignedInfo/{DS}Reference")
    assert reference is not None
    reference.set("URI", "#doc")
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"


def test_extra_reference_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    signed_info = _header(root).find(f"{DS}Signature/{DS}SignedInfo")
    assert signed_info is not None
    reference = signed_info.find(f"{DS}Reference")
    assert reference is not None
    signed_info.append(copy.deepcopy(reference))
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"


def test_reference_to_a_fragment_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    reference = _header(root).find(f"{DS}Signature/{DS}SignedInfo/{DS}Reference")
    assert reference is not None
    reference.set("URI", "#header")
    _header(root).set("Id", "header")
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"


def test_wrapped_original_content_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    # The original envelope is hidden in a ds:Object and a forged one takes its place.
    root = _tree(signed_real)
    envelope = root.find(f"{Q}edXMLEnvelope")
    assert envelope is not None
    signature = _header(root).find(f"{DS}Signature")
    assert signature is not None
    hidden = etree.SubElement(signature, f"{DS}Object")
    hidden.append(copy.deepcopy(envelope))
    subject = envelope.find(f".//{Q}Subject")
    assert subject is not None
    subject.text = "Forged subject"
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"
    # A second, forged envelope next to the signed one is refused too.
    root = _tree(signed_real)
    root.insert(0, copy.deepcopy(root.find(f"{Q}edXMLEnvelope")))
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"


def test_second_signature_is_refused(signed_real: bytes, demo_pki: DemoPki,
                                     trust_store: TrustStore) -> None:
    attacker = _identity(demo_pki, demo_pki.untrusted, demo_pki.untrusted_root_cert)
    root = _tree(signed_real)
    theirs = _header(_tree(xmldsig.sign_package(signed_real, attacker))).find(f"{DS}Signature")
    assert theirs is not None
    _header(root).insert(0, theirs)
    assert _reason(_bytes(root), trust_store) == "signature_wrapping"


# ------------------------------------------------------------------ algorithms and signers


class _Sha1Signer(XMLSigner):
    """What a downgrade attacker (or an old peer) produces: signxml refuses SHA-1 itself."""

    def check_deprecated_methods(self) -> None:
        return None


def _sign_with_sha1(package: bytes, identity: SigningIdentity, *, method: SignatureMethod,
                    digest: DigestAlgorithm) -> bytes:
    root = _tree(package)
    header = _header(root)
    for legacy in header.findall(f"{Q}Signature"):
        header.remove(legacy)
    placeholder = etree.SubElement(header, f"{DS}Signature", nsmap={"ds": XMLDSIG_NS})
    placeholder.set("Id", "placeholder")
    signer = _Sha1Signer(signature_algorithm=method, digest_algorithm=digest,
                         c14n_algorithm=xmldsig.EXC_C14N)
    signed = signer.sign(root, key=identity.private_key,
                         cert=[identity.certificate, *identity.chain])
    return _bytes(signed)


@pytest.mark.parametrize(
    ("method", "digest"),
    [(SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
     (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA1),
     (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA256)],
    ids=["rsa-sha1+sha1", "rsa-sha256+sha1-digest", "rsa-sha1+sha256-digest"],
)
def test_sha1_downgrade_is_refused(method: SignatureMethod, digest: DigestAlgorithm,
                                   real_package: bytes, seal_a: SigningIdentity,
                                   trust_store: TrustStore) -> None:
    signed = _sign_with_sha1(real_package, seal_a, method=method, digest=digest)
    assert _reason(signed, trust_store) == "algorithm_not_allowed"


def test_inclusive_c14n_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    c14n = _header(root).find(f"{DS}Signature/{DS}SignedInfo/{DS}CanonicalizationMethod")
    assert c14n is not None
    c14n.set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    assert _reason(_bytes(root), trust_store) == "algorithm_not_allowed"


def test_altered_signature_value_is_refused(signed_real: bytes, trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    value = _header(root).find(f"{DS}Signature/{DS}SignatureValue")
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    assert _reason(_bytes(root), trust_store) == "signature_invalid"


@pytest.mark.parametrize(
    ("which", "reason"),
    [("untrusted", "untrusted_root"), ("revoked", "cert_revoked"), ("expired", "cert_expired"),
     ("wrong_usage", "wrong_key_usage")],
)
def test_bad_signers_are_refused(which: str, reason: str, real_package: bytes,
                                 demo_pki: DemoPki, trust_store: TrustStore) -> None:
    pair: KeyPair = getattr(demo_pki, which)
    chain = demo_pki.untrusted_root_cert if which == "untrusted" else demo_pki.intermediate_cert
    signed = xmldsig.sign_package(real_package, _identity(demo_pki, pair, chain))
    assert _reason(signed, trust_store) == reason


@needs_xmlsec1
@pytest.mark.tools
def test_xmlsec1_rejects_untrusted_signer(real_package: bytes, demo_pki: DemoPki,
                                          tmp_path: Path) -> None:
    attacker = _identity(demo_pki, demo_pki.untrusted, demo_pki.untrusted_root_cert)
    signed = xmldsig.sign_package(real_package, attacker)
    assert _xmlsec1(demo_pki, signed, tmp_path).returncode != 0


def test_missing_key_info_certificate_is_refused(signed_real: bytes,
                                                 trust_store: TrustStore) -> None:
    root = _tree(signed_real)
    signature = _header(root).find(f"{DS}Signature")
    assert signature is not None
    key_info = signature.find(f"{DS}KeyInfo")
    assert key_info is not None
    signature.remove(key_info)
    assert _reason(_bytes(root), trust_store) == "untrusted_signer"
