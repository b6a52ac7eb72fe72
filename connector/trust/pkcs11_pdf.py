"""pyHanko's PKCS#11 signer, bound to the process's reusable token session.

pyHanko's :class:`~pyhanko.sign.pkcs11.PKCS11Signer` is tied to one session object. Here the
session belongs to :mod:`connector.trust.pkcs11_token` (opened once, re-opened after the
token has come back), so each signature runs through :func:`pkcs11_token.run`: under the
module's lock, with the current session (the signer re-binds itself and looks its key up again
after a re-open) and with python-pkcs11's errors translated (``UnavailableError`` while the
token is missing). The signing certificate and chain come from the loaded identity, so pyHanko
never pulls certificates from the token during a signature.

This module must not build PDFs or stamps (that is :mod:`connector.trust.pdf_seal`).
"""

from __future__ import annotations

from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.pkcs11 import PKCS11Signer, select_pkcs11_signing_params

from connector.trust import pkcs11_token
from connector.trust.keys import SigningIdentity
from connector.trust.pkcs11_keys import TokenKeySource, private_key_handle, token_source_of
from connector.trust.pkcs11_token import TokenSession


def _asn1(certificate: Any) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


class TokenPdfSigner(PKCS11Signer):
    """A PKCS11Signer whose session is the shared, re-openable one of its token."""

    def __init__(self, identity: SigningIdentity, source: TokenKeySource) -> None:
        super().__init__(
            pkcs11_session=None,  # type: ignore[arg-type]  # bound per signature: _bind
            signing_cert=_asn1(identity.certificate),
            ca_chain=[_asn1(c) for c in identity.chain],
            key_label=source.key_label,
            key_id=source.key_id,
            embed_roots=False,
            # ECDSA over a digest computed here: every token has CKM_ECDSA, not every token
            # has the hash-and-sign mechanisms (SoftHSM2 2.6 has none for ECDSA).
            use_raw_mechanism=isinstance(identity.private_key, ec.EllipticCurvePrivateKey),
        )
        self._source = source
        self._generation = -1
        self._loaded = True  # certificate and chain are given; the key is found in _bind

    def _bind(self, state: TokenSession) -> None:
        if state.generation != self._generation:
            self.pkcs11_session = state.session
            self._key_handle = private_key_handle(self._source, state)
            self._loaded = True  # the certificate is ours; the key handle is the line above
            self._generation = state.generation

    async def async_sign_raw(self, data: bytes, digest_algorithm: str,
                             dry_run: bool = False) -> bytes:
        if dry_run:
            return self.estimate_raw_signature_size_bytes() * b"0"

        def operation(state: TokenSession) -> bytes:
            self._bind(state)
            spec = select_pkcs11_signing_params(
                self.get_signature_mechanism_for_digest(digest_algorithm.lower()),
                digest_algorithm.lower(), use_raw_mechanism=self.use_raw_mechanism,
                sign_kwargs=self.sign_kwargs(data),
            )
            payload = spec.pre_sign_transform(data) if spec.pre_sign_transform else data
            assert self._key_handle is not None  # bound just above
            signature: bytes = self._key_handle.sign(payload, **spec.sign_kwargs)
            if spec.post_sign_transform is not None:
                signature = spec.post_sign_transform(signature)
            return signature

        return pkcs11_token.run(self._source.token, operation)


def pdf_signer(identity: SigningIdentity) -> TokenPdfSigner | None:
    """The pyHanko signer of a token identity; None if its key is not in a token."""
    source = token_source_of(identity)
    return TokenPdfSigner(identity, source) if source is not None else None
