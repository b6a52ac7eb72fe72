"""CMS AuthEnvelopedData (RFC 5083/5084): encrypt bytes for several recipients, decrypt ours.

The content is encrypted once with AES-256-GCM under a fresh content-encryption key (CEK);
the CEK is then made available to every recipient:

* RSA certificates: ``KeyTransRecipientInfo`` with RSAES-OAEP, SHA-256 and MGF1-SHA-256
  (RFC 8017, RFC 4055);
* EC certificates (P-256, also P-384/P-521): ``KeyAgreeRecipientInfo`` with ephemeral-static
  ECDH, ``dhSinglePass-stdDH-sha256kdf-scheme`` (ANSI X9.63 KDF over ECC-CMS-SharedInfo) and
  AES-256 key wrap (RFC 5753, RFC 3394), one fresh ephemeral key per recipient.

Recipients are identified by issuer and serial number, which is what ``openssl cms`` writes
and matches. The output is DER ``ContentInfo`` (``openssl cms -decrypt -inform DER`` reads it)
and what ``openssl cms -encrypt -aes-256-gcm`` produces is read back.

What decryption accepts is pinned: AES-GCM with a 256-bit key and a 12..16-byte tag for the
content; RSA-OAEP with SHA-256/384/512 (never PKCS#1 v1.5, never SHA-1) or ECDH with an
X9.63 KDF over SHA-256/384/512 and AES key wrap for the CEK. Anything else is refused with
reason ``algorithm_not_allowed`` (OpenSSL peers need ``-keyopt rsa_oaep_md:sha256`` or
``-keyopt ecdh_kdf_md:sha256``). A wrong key, a failed tag check or a tampered envelope is a
``PermanentError`` with reason ``decrypt_failed``; an envelope that is not well-formed DER
AuthEnvelopedData has reason ``envelope_malformed``. No plaintext is returned unless the GCM
tag verified.

This module must not decide *who* gets a copy (that is ``payload``) nor judge whether a
certificate is trusted (that is the trust store); it only checks that a recipient
certificate's key can be used for encryption.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence

from asn1crypto import algos, cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from connector.errors import ConfigurationError, PermanentError

__all__ = ["decrypt", "encrypt", "encrypt_parts", "recipient_identifiers"]

CEK_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

# RFC 5753 / SEC 1 key agreement schemes (std and cofactor DH are the same on prime-order
# curves such as P-256) -> hash of the X9.63 KDF. SHA-1 variants are deliberately absent.
_KDF_SCHEMES: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.132.1.11.1": hashes.SHA256,  # dhSinglePass-stdDH-sha256kdf-scheme
    "1.3.132.1.11.2": hashes.SHA384,
    "1.3.132.1.11.3": hashes.SHA512,
    "1.3.132.1.14.1": hashes.SHA256,  # dhSinglePass-cofactorDH-sha256kdf-scheme
    "1.3.132.1.14.2": hashes.SHA384,
    "1.3.132.1.14.3": hashes.SHA512,
}
_SHA1_KDF_SCHEMES = {"1.3.133.16.840.63.0.2", "1.3.133.16.840.63.0.3"}
_STD_DH_SHA256_KDF = "1.3.132.1.11.1"

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_WRAP_KEY_BYTES = {"aes128_wrap": 16, "aes192_wrap": 24, "aes256_wrap": 32}
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class GCMParameters(core.Sequence):  # type: ignore[misc]
    """RFC 5084 ``GCMParameters``: nonce and tag length (asn1crypto does not define it)."""

    _fields = [  # noqa: RUF012 - asn1crypto's declarative class attribute
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


class EccCmsSharedInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5753 ``ECC-CMS-SharedInfo``: the KDF's SharedInfo input."""

    _fields = [  # noqa: RUF012 - asn1crypto's declarative class attribute
        ("key_info", cms.KeyEncryptionAlgorithm),
        ("entity_u_info", core.OctetString, {"explicit": 0, "optional": True}),
        ("supp_pub_info", core.OctetString, {"explicit": 2}),
    ]


# ---------------------------------------------------------------------------------- encrypt


def encrypt(data: bytes, recipient_certs: Sequence[x509.Certificate]) -> bytes:
    """Encrypt ``data`` for every certificate; returns DER ``ContentInfo`` (AuthEnvelopedData).

    Raises ``ConfigurationError`` (reason ``encryption_cert_unsupported`` or
    ``wrong_key_usage``) for a certificate whose key cannot receive a CEK.
    """
    return encrypt_parts((data,), recipient_certs)


# Plaintext is encrypted in slices of this size straight into the output (issue 13.6).
_ENCRYPT_SLICE = 1 << 20


def encrypt_parts(parts: Sequence[bytes], recipient_certs: Sequence[x509.Certificate]) -> bytes:
    """:func:`encrypt` of the concatenation of ``parts``, never joined: the ciphertext is
    written slice by slice into the DER output, so a 20 MB attachment exists once as
    plaintext and once as the envelope, not also as plaintext + header, ciphertext + tag and
    a join of them."""
    if not recipient_certs:
        raise ConfigurationError("CMS encryption needs at least one recipient certificate",
                                 reason="encryption_cert_missing")
    cek = os.urandom(CEK_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    recipient_infos = [_recipient_info(cert, cek).dump() for cert in recipient_certs]
    content_algorithm = cms.EncryptionAlgorithm(
        {
            "algorithm": "aes256_gcm",
            "parameters": GCMParameters({"aes_nonce": nonce, "aes_icvlen": TAG_BYTES}),
        }
    ).dump()
    # DER assembled around the ciphertext (asn1crypto would copy a 20 MB attachment several
    # times); the small parts are asn1crypto's own encodings. GCM's ciphertext is as long
    # as the plaintext, so every length is known before the first byte is encrypted.
    length = _size(parts)
    encrypted_content_info = [_OID_DATA, content_algorithm, _header(0x80, length)]
    recipients = b"".join(sorted(recipient_infos))  # DER: SET OF sorted by encoding
    mac_header = _header(0x04, TAG_BYTES)
    enveloped = [b"\x02\x01\x00", _header(0x31, len(recipients)), recipients,
                 _header(0x30, _size(encrypted_content_info) + length), *encrypted_content_info]
    enveloped_size = _size(enveloped) + length + len(mac_header) + TAG_BYTES
    explicit_header = _header(0x30, enveloped_size)
    content_info = [_OID_AUTH_ENVELOPED_DATA,
                    _header(0xA0, len(explicit_header) + enveloped_size), explicit_header]
    out = io.BytesIO()
    for piece in (_header(0x30, _size(content_info) + enveloped_size), *content_info,
                  *enveloped):
        out.write(piece)
    encryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), _ENCRYPT_SLICE):
            out.write(encryptor.update(view[start:start + _ENCRYPT_SLICE]))
    out.write(encryptor.finalize())  # nothing for GCM; computes the tag
    out.write(mac_header)
    out.write(encryptor.tag)
    return out.getvalue()


_OID_DATA = bytes.fromhex("06092a864886f70d010701")
_OID_AUTH_ENVELOPED_DATA = bytes.fromhex("060b2a864886f70d0109100117")


def _header(tag: int, length: int) -> bytes:
    """DER tag and definite length."""
    if length < 0x80:
        return bytes([tag, length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded


def _size(parts: Sequence[bytes | memoryview]) -> int:
    return sum(len(part) for part in parts)


def _recipient_info(cert: x509.Certificate, cek: bytes) -> cms.RecipientInfo:
    public_key = cert.public_key()
    issuer_serial = _issuer_and_serial(cert)
    if isinstance(public_key, rsa.RSAPublicKey):
        _require_key_usage(cert, "key_encipherment")
        encrypted_key = public_key.encrypt(cek, _oaep(hashes.SHA256))
        ktri = cms.KeyTransRecipientInfo(
            {
                "version": "v0",
                "rid": cms.RecipientIdentifier({"issuer_and_serial_number": issuer_serial}),
                "key_encryption_algorithm": _rsa_oaep_sha256(),
                "encrypted_key": encrypted_key,
            }
        )
        return cms.RecipientInfo({"ktri": ktri})
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, _EC_CURVES
    ):
        _require_key_usage(cert, "key_agreement")
        ephemeral = ec.generate_private_key(public_key.curve)
        wrap_algorithm, agreement_algorithm = _ecdh_aes256_wrap()
        kek = _kdf(
            ephemeral.exchange(ec.ECDH(), public_key), hashes.SHA256, wrap_algorithm, None, 32
        )
        originator_point = ephemeral.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        kari = cms.KeyAgreeRecipientInfo(
            {
                "version": "v3",
                "originator": cms.OriginatorIdentifierOrKey(
                    {
                        "originator_key": asn1_keys.PublicKeyInfo(
                            {"algorithm": {"algorithm": "ec"}, "public_key": originator_point}
                        )
                    }
                ),
                "key_encryption_algorithm": agreement_algorithm,
                "recipient_encrypted_keys": [
                    {
                        "rid": cms.KeyAgreementRecipientIdentifier(
                            {"issuer_and_serial_number": issuer_serial}
                        ),
                        "encrypted_key": aes_key_wrap(kek, cek),
                    }
                ],
            }
        )
        return cms.RecipientInfo({"kari": kari})
    raise ConfigurationError(
        f"certificate {cert.subject.rfc4514_string()} has a {type(public_key).__name__}; "
        "CMS encryption supports RSA and EC P-256/P-384/P-521 recipients",
        reason="encryption_cert_unsupported",
    )


@functools.cache
def _rsa_oaep_sha256() -> cms.KeyEncryptionAlgorithm:
    """RSAES-OAEP with SHA-256 and MGF1-SHA-256, built once and kept parsed: asn1crypto
    re-encodes a value it built itself on every dump (about 1 ms per recipient)."""
    built = cms.KeyEncryptionAlgorithm(
        {
            "algorithm": "rsaes_oaep",
            "parameters": algos.RSAESOAEPParams(
                {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "mask_gen_algorithm": {
                        "algorithm": "mgf1",
                        "parameters": {"algorithm": "sha256"},
                    },
                }
            ),
        }
    )
    return cms.KeyEncryptionAlgorithm.load(built.dump())


@functools.cache
def _ecdh_aes256_wrap() -> tuple[cms.KeyEncryptionAlgorithm, cms.KeyEncryptionAlgorithm]:
    """The AES-256 key wrap and the ECDH (SHA-256 KDF) algorithm carrying it, kept parsed."""
    wrap = cms.KeyEncryptionAlgorithm({"algorithm": "aes256_wrap"})
    agreement = cms.KeyEncryptionAlgorithm({"algorithm": _STD_DH_SHA256_KDF, "parameters": wrap})
    return (cms.KeyEncryptionAlgorithm.load(wrap.dump()),
            cms.KeyEncryptionAlgorithm.load(agreement.dump()))


def _require_key_usage(cert: x509.Certificate, usage: str) -> None:
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return  # no KeyUsage extension: the key is not restricted
    if not getattr(key_usage, usage):
        raise ConfigurationError(
            f"certificate {cert.subject.rfc4514_string()} does not allow {usage} "
            "(KeyUsage); it cannot be used to encrypt for this recipient",
            reason="wrong_key_usage",
        )


# ---------------------------------------------------------------------------------- decrypt


def decrypt(der: bytes, private_key: object, cert: x509.Certificate) -> bytes:
    """Decrypt a DER ``ContentInfo``/AuthEnvelopedData addressed to ``cert``.

    ``private_key`` is the (already loaded) RSA or EC private key matching ``cert``.
    """
    if isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        _require_matching_key(private_key, cert)
    else:
        raise ConfigurationError(
            f"decryption key is a {type(private_key).__name__}; RSA or EC expected",
            reason="key_unsupported",
        )
    split = _split_ciphertext(der)
    enveloped = _load_envelope(der if split is None else split[0])
    content_info = enveloped["auth_encrypted_content_info"]
    nonce, tag_len = _gcm_parameters(content_info["content_encryption_algorithm"])
    cek = _recover_cek(enveloped["recipient_infos"], private_key, cert)
    try:
        ciphertext = (content_info["encrypted_content"].native if split is None
                      else split[1])
        tag = enveloped["mac"].native
        auth_attrs = enveloped["auth_attrs"]
        # RFC 5083: the AAD is the DER of authAttrs with the universal SET OF tag.
        aad = b"" if isinstance(auth_attrs, core.Void) else b"\x31" + auth_attrs.dump()[1:]
    except ValueError as exc:
        raise PermanentError(f"not a DER CMS AuthEnvelopedData: {exc}",
                             reason="envelope_malformed") from None
    if ciphertext is None:
        raise PermanentError("envelope has no encrypted content (detached content is not "
                             "supported)", reason="envelope_malformed")
    if len(tag) != tag_len:
        raise PermanentError(f"envelope tag is {len(tag)} bytes, parameters say {tag_len}",
                             reason="envelope_malformed")
    try:
        # The streaming interface takes the tag apart: no copy of ciphertext + tag.
        decryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce, tag, min_tag_length=12)
                           ).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        plaintext = decryptor.update(ciphertext)
        tail = decryptor.finalize()  # verifies the tag; nothing is returned before
        if tail:  # GCM has none; no copy of the plaintext to append nothing
            plaintext += tail
    except InvalidTag:
        raise PermanentError(
            "envelope authentication failed (AES-GCM tag mismatch): the ciphertext, its "
            "parameters or the encrypted key were altered, or the key is wrong",
            reason="decrypt_failed",
        ) from None
    except ValueError as exc:
        raise PermanentError(f"envelope content cannot be decrypted: {exc}",
                             reason="decrypt_failed") from None
    return plaintext


def _split_ciphertext(der: bytes) -> tuple[bytes, memoryview] | None:
    """(the envelope with an empty encryptedContent, the ciphertext in place) for the plain
    DER shape every sender we know writes; None for anything else (BER, constructed or
    absent content, non-minimal lengths), which asn1crypto then reads whole as before.

    asn1crypto copies the contents of every enclosing element as it parses them: four
    copies of a 20 MB ciphertext (issue 13.6). The skeleton is parsed as strictly as the
    whole envelope was."""
    try:
        ci_start, ci_end = _tlv(der, 0, len(der), 0x30)
        if ci_end != len(der):
            return None
        position = _skip(der, ci_start, ci_end, 0x06)  # contentType
        explicit_header = position
        aed_at, explicit_end = _tlv(der, position, ci_end, 0xA0)
        aed_start, aed_end = _tlv(der, aed_at, explicit_end, 0x30)
        if explicit_end != ci_end or aed_end != explicit_end:
            return None
        position = _skip(der, aed_start, aed_end, 0x02)  # version
        if der[position] == 0xA0:  # originatorInfo
            position = _skip(der, position, aed_end, 0xA0)
        position = _skip(der, position, aed_end, 0x31)  # recipientInfos
        eci_header = position
        eci_start, eci_end = _tlv(der, position, aed_end, 0x30)
        position = _skip(der, eci_start, eci_end, 0x06)  # contentType
        position = _skip(der, position, eci_end, 0x30)  # contentEncryptionAlgorithm
        content_header = position
        content_start, content_end = _tlv(der, position, eci_end, 0x80)
        if content_end != eci_end:
            return None
    except IndexError:
        return None
    except _NotPlainDer:
        return None
    eci = der[eci_start:content_header] + b"\x80\x00"
    aed = (der[aed_start:eci_header] + _header(0x30, len(eci)) + eci
           + der[eci_end:aed_end])
    explicit = _header(0x30, len(aed)) + aed
    content_info = der[ci_start:explicit_header] + _header(0xA0, len(explicit)) + explicit
    skeleton = _header(0x30, len(content_info)) + content_info
    return skeleton, memoryview(der)[content_start:content_end]


class _NotPlainDer(Exception):
    pass


def _tlv(der: bytes, position: int, end: int, tag: int) -> tuple[int, int]:
    """(contents start, contents end) of the element at ``position`` with ``tag``, a
    minimally encoded definite length and its contents within ``end``."""
    if position + 2 > end or der[position] != tag:
        raise _NotPlainDer
    first = der[position + 1]
    if first < 0x80:
        start, length = position + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or position + 2 + count > end:
            raise _NotPlainDer  # indefinite (BER) or absurd
        length = int.from_bytes(der[position + 2:position + 2 + count], "big")
        if length < 0x80 or length.bit_length() <= 8 * (count - 1):
            raise _NotPlainDer  # not the minimal encoding: DER would not write it
        start = position + 2 + count
    if start + length > end:
        raise _NotPlainDer
    return start, start + length


def _skip(der: bytes, position: int, end: int, tag: int) -> int:
    return _tlv(der, position, end, tag)[1]


def recipient_identifiers(der: bytes) -> list[tuple[str, int]]:
    """(issuer RFC 4514 string, serial) of every recipient named by the envelope."""
    enveloped = _load_envelope(der)
    found: list[tuple[str, int]] = []
    for info in enveloped["recipient_infos"]:
        if info.name == "ktri":
            rids = [info.chosen["rid"]]
        elif info.name == "kari":
            rids = [rek["rid"] for rek in info.chosen["recipient_encrypted_keys"]]
        else:
            continue
        for rid in rids:
            if rid.name == "issuer_and_serial_number":
                ias = rid.chosen
                found.append((ias["issuer"].human_friendly, ias["serial_number"].native))
    return found


def _load_envelope(der: bytes) -> cms.AuthEnvelopedData:
    try:
        info = cms.ContentInfo.load(der, strict=True)
        content_type = info["content_type"].native
        if content_type != "authenticated_enveloped_data":
            raise PermanentError(
                f"CMS content type is {content_type}, expected AuthEnvelopedData "
                "(1.2.840.113549.1.9.16.1.23)",
                reason="envelope_malformed",
            )
        enveloped: cms.AuthEnvelopedData = info["content"]
        # Parse everything but the (possibly large) ciphertext now, so malformed DER fails here.
        for name in ("version", "recipient_infos", "mac"):
            enveloped[name].native  # noqa: B018
        for name in ("content_type", "content_encryption_algorithm"):
            enveloped["auth_encrypted_content_info"][name].native  # noqa: B018
    except PermanentError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PermanentError(f"not a DER CMS AuthEnvelopedData: {exc}",
                             reason="envelope_malformed") from None
    return enveloped


def _gcm_parameters(algorithm: cms.EncryptionAlgorithm) -> tuple[bytes, int]:
    name = algorithm["algorithm"].native
    if name != "aes256_gcm":
        raise PermanentError(
            f"content encryption {name} is not allowed (AES-256-GCM only)",
            reason="algorithm_not_allowed",
        )
    try:
        params = GCMParameters.load(algorithm["parameters"].dump(), strict=True)
        nonce: bytes = params["aes_nonce"].native
        tag_len: int = params["aes_icvlen"].native
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"bad GCM parameters: {exc}", reason="envelope_malformed") from None
    if not 12 <= tag_len <= 16 or not nonce:
        raise PermanentError(
            f"GCM tag length {tag_len} / nonce length {len(nonce)} not allowed",
            reason="algorithm_not_allowed",
        )
    return nonce, tag_len


def _recover_cek(
    recipient_infos: cms.RecipientInfos,
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
) -> bytes:
    ours = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    for info in recipient_infos:
        if info.name == "ktri" and _rid_matches(info.chosen["rid"], ours):
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise PermanentError("envelope uses RSA key transport for our certificate, "
                                     "but our key is EC", reason="decrypt_failed")
            return _unwrap_ktri(info.chosen, private_key)
        if info.name == "kari":
            for rek in info.chosen["recipient_encrypted_keys"]:
                if _rid_matches(rek["rid"], ours):
                    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
                        raise PermanentError("envelope uses ECDH for our certificate, but our "
                                             "key is RSA", reason="decrypt_failed")
                    return _unwrap_kari(info.chosen, rek["encrypted_key"].native, private_key)
    raise PermanentError(
        f"envelope is not addressed to {cert.subject.rfc4514_string()} "
        f"(serial {cert.serial_number:x}): no matching recipient; wrong decryption key/cert",
        reason="decrypt_failed",
    )


def _rid_matches(rid: core.Choice, ours: asn1_x509.Certificate) -> bool:
    if rid.name == "issuer_and_serial_number":
        ias = rid.chosen
        return bool(ias["issuer"] == ours.issuer
                    and ias["serial_number"].native == ours.serial_number)
    if rid.name in ("subject_key_identifier", "r_key_id"):
        ski = rid.chosen.native if rid.name == "subject_key_identifier" else (
            rid.chosen["subject_key_identifier"].native)
        return ours.key_identifier is not None and ski == ours.key_identifier
    return False


def _unwrap_ktri(ktri: cms.KeyTransRecipientInfo, key: rsa.RSAPrivateKey) -> bytes:
    algorithm = ktri["key_encryption_algorithm"]
    name = algorithm["algorithm"].native
    if name != "rsaes_oaep":
        raise PermanentError(
            f"key transport {name} is not allowed (RSA-OAEP with SHA-256 or better only)",
            reason="algorithm_not_allowed",
        )
    params = algorithm["parameters"]
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
    label = params["p_source_algorithm"]["parameters"].native
    if hash_name not in _OAEP_HASHES or mgf_hash not in _OAEP_HASHES or label:
        raise PermanentError(
            f"RSA-OAEP with hash {hash_name}/MGF1-{mgf_hash} is not allowed (SHA-256 or "
            "better; OpenSSL senders need -keyopt rsa_oaep_md:sha256)",
            reason="algorithm_not_allowed",
        )
    try:
        cek: bytes = key.decrypt(
            ktri["encrypted_key"].native,
            padding.OAEP(mgf=padding.MGF1(_OAEP_HASHES[mgf_hash]()),
                         algorithm=_OAEP_HASHES[hash_name](), label=None),
        )
    except ValueError:
        raise PermanentError(
            "RSA-OAEP decryption of the content key failed: wrong decryption key or "
            "tampered envelope", reason="decrypt_failed") from None
    return _check_cek(cek)


def _unwrap_kari(
    kari: cms.KeyAgreeRecipientInfo, encrypted_key: bytes, key: ec.EllipticCurvePrivateKey
) -> bytes:
    algorithm = kari["key_encryption_algorithm"]
    scheme = algorithm["algorithm"].dotted
    if scheme in _SHA1_KDF_SCHEMES or scheme not in _KDF_SCHEMES:
        raise PermanentError(
            f"key agreement scheme {scheme} is not allowed (ECDH with an X9.63 KDF over "
            "SHA-256 or better; OpenSSL senders need -keyopt ecdh_kdf_md:sha256)",
            reason="algorithm_not_allowed",
        )
    try:
        wrap_algorithm = cms.KeyEncryptionAlgorithm.load(algorithm["parameters"].dump(),
                                                         strict=True)
    except ValueError as exc:
        raise PermanentError(f"bad key wrap algorithm: {exc}",
                             reason="envelope_malformed") from None
    wrap_name = wrap_algorithm["algorithm"].native
    if wrap_name not in _WRAP_KEY_BYTES:
        raise PermanentError(f"key wrap {wrap_name} is not allowed (AES key wrap only)",
                             reason="algorithm_not_allowed")
    originator = kari["originator"]
    if originator.name != "originator_key":
        raise PermanentError("ECDH recipient without an ephemeral originator key is not "
                             "supported", reason="algorithm_not_allowed")
    point = bytes(originator.chosen["public_key"])
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, point)
    except ValueError:
        raise PermanentError("originator key is not a point on our curve",
                             reason="decrypt_failed") from None
    ukm = None if isinstance(kari["ukm"], core.Void) else kari["ukm"].native
    kek = _kdf(key.exchange(ec.ECDH(), ephemeral), _KDF_SCHEMES[scheme], wrap_algorithm, ukm,
               _WRAP_KEY_BYTES[wrap_name])
    try:
        return _check_cek(aes_key_unwrap(kek, encrypted_key))
    except InvalidUnwrap:
        raise PermanentError(
            "AES key unwrap of the content key failed: wrong decryption key or tampered "
            "envelope", reason="decrypt_failed") from None


def _kdf(
    shared_secret: bytes,
    hash_type: type[hashes.HashAlgorithm],
    wrap_algorithm: cms.KeyEncryptionAlgorithm,
    ukm: bytes | None,
    key_bytes: int,
) -> bytes:
    shared_info = {"key_info": wrap_algorithm, "supp_pub_info": (key_bytes * 8).to_bytes(4, "big")}
    if ukm is not None:
        shared_info["entity_u_info"] = ukm
    return X963KDF(
        algorithm=hash_type(), length=key_bytes, sharedinfo=EccCmsSharedInfo(shared_info).dump()
    ).derive(shared_secret)


def _check_cek(cek: bytes) -> bytes:
    if len(cek) != CEK_BYTES:
        raise PermanentError(f"recovered content key is {len(cek)} bytes, not {CEK_BYTES}: "
                             "wrong decryption key or tampered envelope", reason="decrypt_failed")
    return cek


def _issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return cms.IssuerAndSerialNumber(
        {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
    )


def _oaep(hash_type: type[hashes.HashAlgorithm]) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_type()), algorithm=hash_type(), label=None)


def _require_matching_key(
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = private_key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    if ours != theirs:
        raise ConfigurationError(
            f"decryption key does not belong to certificate {cert.subject.rfc4514_string()}",
            reason="key_cert_mismatch",
        )
