"""A pyHanko signer that reuses, per signer, what does not change from one signature to the next.

asn1crypto re-encodes every value it did not parse itself each time it is dumped, and pyHanko
builds a signature's CMS from fresh values several times per PDF: the signing-certificate-v2
attribute (a hash and the issuer's name of our own certificate), the signed attributes (dumped
to be signed, then again inside ``SignerInfo``, then again in the container), and a whole
dry-run signature made only to measure how many bytes to reserve in ``/Contents``. Here:

* the signing-certificate-v2 value is built once per signer, by pyHanko, and kept in parsed
  form (its encoding is then reused, not rebuilt);
* the signed attributes are built by pyHanko as before and handed on in parsed form, so the
  bytes signed are the bytes embedded, encoded once;
* the dry run's container is kept per signature shape (digest, PAdES or not), since its length
  depends only on the certificates and algorithms; it is used for nothing but its length.
  Shapes with time stamps, revocation attributes or CAdES attributes are never reused.

The output is byte for byte what pyHanko's own path gives (tests compare them). This module
must not choose keys, fields or policies: :mod:`connector.trust.pdf_seal` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from asn1crypto import cms
from pyhanko.sign import attributes
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from connector.trust.keys import SigningIdentity
from connector.trust.pdf_seal import CachedKeySigner


class _KeptSigningCertificate(attributes.SigningCertificateV2Provider):
    """The signing-certificate-v2 value of one certificate, built by pyHanko once."""

    def __init__(self, provider: attributes.SigningCertificateV2Provider) -> None:
        super().__init__(provider.signing_cert)
        self._attribute: cms.CMSAttribute | None = None

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute | None:
        if self._attribute is None:
            built = await super().get_attribute(dry_run=dry_run)
            assert built is not None
            self._attribute = cms.CMSAttribute.load(built.dump())
        return self._attribute


class ReusingSigner(CachedKeySigner):
    """:class:`CachedKeySigner` reusing the signing-certificate attribute and the size estimate."""

    def __init__(self, identity: SigningIdentity) -> None:
        super().__init__(identity)
        self._certificate_attribute: _KeptSigningCertificate | None = None
        self._dry_runs: dict[tuple[str, bool, bool], bytes] = {}
        self._dry_run_lock = threading.Lock()

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        providers: Iterable[Any] = super()._signed_attr_providers(*args, **kwargs)
        for provider in providers:
            # Exactly pyHanko's provider for our own certificate; any other kind is left alone.
            if (type(provider) is attributes.SigningCertificateV2Provider
                    and provider.signing_cert is self.signing_cert):
                if self._certificate_attribute is None:
                    self._certificate_attribute = _KeptSigningCertificate(provider)
                yield self._certificate_attribute
            else:
                yield provider

    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        built = await super().signed_attrs(*args, **kwargs)
        # Parsed, the attributes are encoded once: the bytes signed are the bytes embedded.
        return cms.CMSAttributes.load(built.dump())

    async def async_sign(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: Any = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> cms.ContentInfo:
        shape = _reusable_shape(dry_run, digest_algorithm, use_pades, timestamper,
                                signed_attr_settings, is_pdf_sig, encap_content_info)
        if shape is not None:
            with self._dry_run_lock:
                kept = self._dry_runs.get(shape)
            if kept is not None:
                return cms.ContentInfo.load(kept)  # a fresh value: callers may alter theirs
        result: cms.ContentInfo = await super().async_sign(
            data_digest, digest_algorithm, dry_run=dry_run, use_pades=use_pades,
            timestamper=timestamper, signed_attr_settings=signed_attr_settings,
            is_pdf_sig=is_pdf_sig, encap_content_info=encap_content_info,
        )
        if shape is not None:
            with self._dry_run_lock:
                self._dry_runs[shape] = result.dump()
        return result


def _reusable_shape(
    dry_run: bool, digest_algorithm: str, use_pades: bool, timestamper: Any,
    settings: PdfCMSSignedAttributes | None, is_pdf_sig: bool, encap_content_info: Any,
) -> tuple[str, bool, bool] | None:
    """The key under which a dry run may be reused, or None when it must be made afresh."""
    if not dry_run or timestamper is not None or encap_content_info is not None:
        return None
    if settings is not None and (settings.adobe_revinfo_attr is not None
                                 or settings.cades_signed_attrs is not None):
        return None
    return digest_algorithm.lower(), bool(use_pades), bool(is_pdf_sig)
