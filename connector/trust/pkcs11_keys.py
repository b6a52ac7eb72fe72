"""Signing identities whose private key lives in a PKCS#11 token and never leaves it.

:class:`TokenKeySource` is the token counterpart of :class:`~connector.trust.keys.KeySource`:
picklable, so worker processes receive it and open their own session on first use. Its
:meth:`~TokenKeySource.load` gives a :class:`~connector.trust.keys.SigningIdentity` whose
``private_key`` is a stand-in (:class:`TokenRSAPrivateKey` / :class:`TokenECPrivateKey`):
cryptography's key interface, so the XML signer and every other caller use it unchanged, but
``sign`` asks the token to compute the signature and the private numbers cannot be read. The
certificate comes from a file or from the token itself; at load the key is checked against it
with one test signature.

Token failures surface as the typed errors of :mod:`connector.trust.pkcs11_token`
(``UnavailableError`` while the token is missing; documents wait, they are not failed).
This module must not open sessions itself (that is :mod:`pkcs11_token`) nor know about PDFs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from connector.errors import ConfigurationError
from connector.trust import pkcs11_token
from connector.trust.keys import SigningIdentity, _order_chain, load_certificates
from connector.trust.pkcs11_token import TokenSession, TokenSpec

_RSA_MECHANISMS = {"sha256": Mechanism.SHA256_RSA_PKCS, "sha384": Mechanism.SHA384_RSA_PKCS,
                   "sha512": Mechanism.SHA512_RSA_PKCS}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1), for RSA over an already computed digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


@dataclass(frozen=True)
class TokenKeySource:
    """A key in a token: ``key_label`` and/or ``key_id`` find it; the certificate is
    ``cert_file`` (which may hold intermediates too) or the token's certificate object
    labelled ``cert_label`` (default: the key's label / id)."""

    token: TokenSpec
    key_label: str | None = None
    key_id: bytes | None = None
    cert_label: str | None = None
    cert_file: Path | None = None
    chain: tuple[Path, ...] = ()

    def describe(self) -> str:
        name = self.key_label or (self.key_id.hex() if self.key_id else "?")
        return f"key {name!r} in {self.token.describe()}"

    def load(self) -> SigningIdentity:
        """The identity (once per process; the token is opened, not re-read, afterwards)."""
        with _identities_lock:
            cached = _identities.get(self)
        if cached is not None:
            return cached
        identity = _load(self)
        with _identities_lock:
            _identities[self] = identity
        return identity

    def sign(self, data: bytes, mechanism: Mechanism) -> bytes:
        """The token's signature of ``data`` with ``mechanism`` (the key never leaves it)."""

        def operation(state: TokenSession) -> bytes:
            signature: bytes = private_key_handle(self, state).sign(data, mechanism=mechanism)
            return signature

        return pkcs11_token.run(self.token, operation)


_identities: dict[TokenKeySource, SigningIdentity] = {}
_identities_lock = threading.Lock()


def private_key_handle(source: TokenKeySource, state: TokenSession) -> Any:
    """The key object in this session (looked up once per session)."""
    cache_key = f"key:{source.key_label}:{source.key_id!r}"
    handle = state.cache.get(cache_key)
    if handle is None:
        criteria: dict[str, Any] = {"object_class": ObjectClass.PRIVATE_KEY}
        if source.key_label:
            criteria["label"] = source.key_label
        if source.key_id:
            criteria["id"] = source.key_id
        try:
            handle = state.session.get_key(**criteria)
        except p11.NoSuchKey as exc:
            raise ConfigurationError(f"no private {source.describe()}",
                                     reason="token_key_missing") from exc
        except p11.MultipleObjectsReturned as exc:
            raise ConfigurationError(f"several private keys match {source.describe()}; give "
                                     "key_id", reason="token_key_ambiguous") from exc
        state.cache[cache_key] = handle
    return handle


def _certificate_from_token(source: TokenKeySource) -> x509.Certificate:
    attributes: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.CERTIFICATE}
    label = source.cert_label or (source.key_label if not source.key_id else None)
    if label:
        attributes[Attribute.LABEL] = label
    if source.key_id and not source.cert_label:
        attributes[Attribute.ID] = source.key_id

    def operation(state: TokenSession) -> bytes:
        found = list(state.session.get_objects(attributes))
        if len(found) != 1:
            what = "no certificate" if not found else f"{len(found)} certificates"
            raise ConfigurationError(f"{what} for {source.describe()} in the token (give "
                                     "cert_label or cert_file)", reason="token_cert_missing")
        value: bytes = found[0][Attribute.VALUE]
        return value

    return x509.load_der_x509_certificate(pkcs11_token.run(source.token, operation))


def _load(source: TokenKeySource) -> SigningIdentity:
    if source.cert_file is not None:
        in_file = load_certificates(source.cert_file)
        certificate, extra = in_file[0], in_file[1:]
    else:
        certificate, extra = _certificate_from_token(source), []
    for path in source.chain:
        extra.extend(load_certificates(path))
    public = certificate.public_key()
    probe = b"connector key check"
    key: TokenRSAPrivateKey | TokenECPrivateKey
    try:
        if isinstance(public, rsa.RSAPublicKey):
            key = TokenRSAPrivateKey(source, public)
            rsa_signature = key.sign(probe, padding.PKCS1v15(), hashes.SHA256())
            public.verify(rsa_signature, probe, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            key = TokenECPrivateKey(source, public)
            ec_signature = key.sign(probe, ec.ECDSA(hashes.SHA256()))
            public.verify(ec_signature, probe, ec.ECDSA(hashes.SHA256()))
        else:
            raise ConfigurationError(f"{source.describe()}: certificate key "
                                     f"{type(public).__name__} is not supported (use RSA or EC)",
                                     reason="key_unsupported")
    except InvalidSignature:
        raise ConfigurationError(
            f"{source.describe()} does not belong to certificate "
            f"{certificate.subject.rfc4514_string()}", reason="key_cert_mismatch") from None
    return SigningIdentity(private_key=key, certificate=certificate,
                           chain=_order_chain(certificate, extra), source=source.describe())


def _hash_name(algorithm: object) -> str:
    name = getattr(algorithm, "name", "")
    if name not in _DIGEST_INFO:
        raise UnsupportedAlgorithm(f"token signatures use SHA-256/384/512, not {name or '?'}")
    return str(name)


def _stays_in_token(source: TokenKeySource) -> NoReturn:
    raise TypeError(f"the private {source.describe()} stays in the token and cannot be exported")


class TokenRSAPrivateKey(rsa.RSAPrivateKey):
    """An RSA key in a token: signs there (PKCS#1 v1.5); exporting it is impossible."""

    def __init__(self, source: TokenKeySource, public: rsa.RSAPublicKey) -> None:
        self.source = source
        self._public = public

    def sign(self, data: bytes, padding: AsymmetricPadding,
             algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

        if not isinstance(padding, PKCS1v15):
            raise UnsupportedAlgorithm(f"token RSA signatures use PKCS#1 v1.5, not {padding.name}")
        if isinstance(algorithm, utils.Prehashed):
            name = _hash_name(algorithm._algorithm)
            return self.source.sign(_DIGEST_INFO[name] + data, Mechanism.RSA_PKCS)
        if isinstance(algorithm, hashes.HashAlgorithm):
            return self.source.sign(data, _RSA_MECHANISMS[_hash_name(algorithm)])
        return self.source.sign(bytes(data), Mechanism.RSA_PKCS)  # NoDigestInfo: as given

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        raise UnsupportedAlgorithm("token keys are used for signing only")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _stays_in_token(self.source)

    def private_bytes(self, encoding: serialization.Encoding,
                      format: serialization.PrivateFormat,
                      encryption_algorithm: serialization.KeySerializationEncryption) -> bytes:
        _stays_in_token(self.source)

    def __copy__(self) -> TokenRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenRSAPrivateKey:
        return self


class TokenECPrivateKey(ec.EllipticCurvePrivateKey):
    """An EC key in a token: ECDSA there (DER signatures, as cryptography's own keys give)."""

    def __init__(self, source: TokenKeySource, public: ec.EllipticCurvePublicKey) -> None:
        self.source = source
        self._public = public

    def sign(self, data: bytes | bytearray | memoryview,
             signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("token EC signatures are ECDSA")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            _hash_name(algorithm._algorithm)
            digest = bytes(data)
        else:
            # Hash here, sign the digest in the token (CKM_ECDSA): every token has the raw
            # mechanism, not all have the hash-and-sign ones (SoftHSM2 2.6 lacks them).
            _hash_name(algorithm)
            hasher = hashes.Hash(algorithm)
            hasher.update(data)
            digest = hasher.finalize()
        raw = self.source.sign(digest, Mechanism.ECDSA)
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                          int.from_bytes(raw[half:], "big"))

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise UnsupportedAlgorithm("token keys are used for signing only")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _stays_in_token(self.source)

    def private_bytes(self, encoding: serialization.Encoding,
                      format: serialization.PrivateFormat,
                      encryption_algorithm: serialization.KeySerializationEncryption) -> bytes:
        _stays_in_token(self.source)

    def __copy__(self) -> TokenECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenECPrivateKey:
        return self


TokenPrivateKey = TokenRSAPrivateKey | TokenECPrivateKey


def token_source_of(identity: SigningIdentity) -> TokenKeySource | None:
    """The token behind an identity, or None for a key held in memory."""
    key = identity.private_key
    return key.source if isinstance(key, TokenRSAPrivateKey | TokenECPrivateKey) else None


def forget_identities() -> None:
    """Forget loaded token identities (tests, operator reload)."""
    with _identities_lock:
        _identities.clear()
