"""Sign PDFs (PAdES baseline B) as incremental updates, with a signer that keeps its key loaded.

:func:`seal_pdf` applies the organisation seal: a new signature field, an incremental update
(so earlier signatures stay valid), a visible stamp with the organisation's name and the signing
time in ISO 8601 with Vietnam's offset, or an invisible signature. :func:`sign_pdf` is the same
for any identity (personal signatures in tests and demos).

Both are plain functions over bytes so that the daemon can run them in a worker pool: pass a
:class:`~connector.trust.keys.KeySource` or a :class:`~connector.trust.pkcs11_keys.TokenKeySource`
(picklable; each worker process loads the key once and keeps it, or opens its own token
session) or an already loaded :class:`~connector.trust.keys.SigningIdentity`.
This module must not decide whether a document may be sealed (that is :mod:`pdf_policy`) nor
verify signatures (:mod:`pdf_verify`).
"""

from __future__ import annotations

import importlib
import io
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from connector.errors import ConfigurationError, PermanentError
from connector.timeutil import now_vn
from connector.trust.keys import IdentitySource, SigningIdentity
from connector.trust.truststore import organ_id_of

SEAL_FIELD_PREFIX = "OrganisationSeal"
_STAMP_WIDTH, _STAMP_HEIGHT, _STAMP_MARGIN = 260, 64, 36


class CachedKeySigner(signers.SimpleSigner):
    """A pyHanko signer over an in-memory key object, never re-loading it per signature.

    pyHanko's SimpleSigner re-parses its DER key on every signature (tens of milliseconds
    for RSA); this one signs with the cryptography key object held by the identity.
    """

    def __init__(self, identity: SigningIdentity) -> None:
        key_der = identity.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certs = [_asn1_cert(c) for c in identity.chain]
        super().__init__(
            signing_cert=_asn1_cert(identity.certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs(certs),  # type: ignore[no-untyped-call]
            embed_roots=False,
        )
        self._key = identity.private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        name = mechanism.signature_algo
        hash_algorithm = _HASHES[digest_algorithm.lower()]()
        if isinstance(self._key, rsa.RSAPrivateKey):
            if name == "rsassa_pkcs1v15":
                return self._key.sign(data, padding.PKCS1v15(), hash_algorithm)
            if name == "rsassa_pss":
                pss = padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
                return self._key.sign(data, pss, hash_algorithm)
        elif name == "ecdsa":
            return self._key.sign(data, ec.ECDSA(hash_algorithm))
        raise SigningError(f"signature mechanism {name} does not fit the loaded key")


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


def _asn1_cert(certificate: object) -> asn1_x509.Certificate:
    from cryptography import x509

    assert isinstance(certificate, x509.Certificate)
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


_signers: dict[int, tuple[SigningIdentity, signers.Signer]] = {}
_signers_lock = threading.Lock()


def signer_for(identity: SigningIdentity) -> signers.Signer:
    """The (process-wide, reused) pyHanko signer of a loaded identity: pyHanko's PKCS#11
    signer when the key is in a token (:mod:`pkcs11_pdf`), else a :class:`CachedKeySigner`
    that reuses its signing-certificate attribute and size estimate (:mod:`seal_signer`)."""
    from connector.trust.pkcs11_pdf import pdf_signer
    from connector.trust.seal_signer import ReusingSigner

    with _signers_lock:
        entry = _signers.get(id(identity))
        if entry is None or entry[0] is not identity:
            entry = (identity, pdf_signer(identity) or ReusingSigner(identity))
            _signers[id(identity)] = entry
        return entry[1]


@dataclass(frozen=True)
class StampOptions:
    """How the signature shows on the page: invisible unless ``visible``."""

    visible: bool = False
    page: int = -1  # index of the page carrying the stamp; -1 is the last page
    font_file: Path | None = None  # an OpenType font (1000 units/em) for full Vietnamese text


def _fold_to_ascii(text: str) -> str:
    """Vietnamese text in plain ASCII, for the standard PDF fonts (which lack its glyphs)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode(
        "ascii", "replace").decode("ascii")


_font_factories: dict[Path, FontEngineFactory] = {}


def _text_box_style(options: StampOptions) -> tuple[TextBoxStyle, bool]:
    """The stamp's text style, and whether it can show full Unicode (Vietnamese) text.

    Without a font file the standard Courier font is used and text is folded to ASCII. A font
    file needs pyHanko's ``opentype`` extra and 1000 units per em (typical of OpenType/CFF
    ``.otf`` fonts): pyHanko writes glyph widths in font units, so a 2048-unit TrueType font
    would be drawn with stretched spacing.
    """
    if options.font_file is None:
        return TextBoxStyle(font_size=9), False
    font_path = Path(options.font_file)
    factory = _font_factories.get(font_path)
    if factory is None:
        try:
            tt_lib = importlib.import_module("fontTools.ttLib")
            from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
        except ImportError as exc:
            raise ConfigurationError(
                "a stamp font needs pyHanko's opentype extra (fonttools, uharfbuzz)",
                reason="font_unavailable",
            ) from exc
        try:
            units = int(tt_lib.TTFont(str(font_path), lazy=True)["head"].unitsPerEm)
        except (OSError, KeyError, AssertionError) as exc:
            raise ConfigurationError(
                f"stamp font {font_path} cannot be read: {exc}", reason="font_unavailable"
            ) from exc
        if units != 1000:
            raise ConfigurationError(
                f"stamp font {font_path} has {units} units per em; the stamp needs a font "
                "with 1000 (an OpenType/CFF .otf font)",
                reason="font_unsupported",
            )
        factory = GlyphAccumulatorFactory(str(font_path))
        _font_factories[font_path] = factory
    return TextBoxStyle(font=factory, font_size=9), True


def _free_field_name(reader: PdfFileReader, prefix: str) -> str:
    from pyhanko.sign.fields import enumerate_sig_fields

    taken = {name for name, _value, _ref in enumerate_sig_fields(reader)}
    number = 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


def _stamp_box(writer: IncrementalPdfFileWriter, page_index: int) -> tuple[int, int, int, int]:
    """Bottom-right corner of the page, where a seal usually sits."""
    node = writer.find_page_for_modification(page_index)[0].get_object()  # type: ignore[no-untyped-call]
    while "/MediaBox" not in node and "/Parent" in node:  # MediaBox may be inherited
        node = node["/Parent"].get_object()
    media = node.get("/MediaBox", [0, 0, 595, 842])
    right, bottom = int(float(media[2])), int(float(media[1]))
    return (right - _STAMP_MARGIN - _STAMP_WIDTH, bottom + _STAMP_MARGIN,
            right - _STAMP_MARGIN, bottom + _STAMP_MARGIN + _STAMP_HEIGHT)


def sign_pdf(
    data: bytes,
    signer: SigningIdentity | IdentitySource,
    *,
    field_prefix: str = "Signature",
    stamp: StampOptions | None = None,
    stamp_title: str | None = None,
    reason: str | None = None,
) -> bytes:
    """Add one PAdES baseline-B signature to ``data`` as an incremental update.

    Raises PermanentError ``pdf_unreadable`` if the input is not a PDF pyHanko can update
    (e.g. encrypted), ``pdf_sign_failed`` if signing fails.
    """
    identity = signer if isinstance(signer, SigningIdentity) else signer.load()
    stamp = stamp or StampOptions()
    source = io.BytesIO(data)
    try:
        writer = IncrementalPdfFileWriter(source, strict=False)
    except (PdfError, ValueError, KeyError, IndexError) as exc:
        raise PermanentError(
            f"cannot open the PDF to sign it: {exc}", reason="pdf_unreadable"
        ) from exc
    if writer.prev.encrypted:
        raise PermanentError("cannot sign an encrypted PDF", reason="pdf_unreadable")
    field_name = _free_field_name(writer.prev, field_prefix)
    title = stamp_title or identity.certificate.subject.rfc4514_string()
    signing_time = now_vn().isoformat()
    field_spec = fields.SigFieldSpec(sig_field_name=field_name)
    style: TextStampStyle | None = None
    text_params: dict[str, str] | None = None
    if stamp.visible:
        page_count = int(writer.root["/Pages"]["/Count"])
        page_index = stamp.page % page_count
        box = _stamp_box(writer, page_index)
        field_spec = fields.SigFieldSpec(sig_field_name=field_name, on_page=page_index, box=box)
        text_style, unicode_ok = _text_box_style(stamp)
        shown = title if unicode_ok else _fold_to_ascii(title)
        style = TextStampStyle(
            stamp_text="%(title)s\nSigned: %(when)s", text_box_style=text_style, border_width=1,
        )
        text_params = {"title": shown, "when": signing_time}
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        name=title,
    )
    pdf_signer = signers.PdfSigner(
        meta, signer=signer_for(identity), stamp_style=style, new_field_spec=field_spec
    )
    try:
        output = pdf_signer.sign_pdf(writer, appearance_text_params=text_params)
    except (SigningError, PdfError, ValueError, KeyError) as exc:
        raise PermanentError(f"signing the PDF failed: {exc}", reason="pdf_sign_failed") from exc
    result: bytes = output.getvalue()
    # pyHanko's reader and writer refer to each other: until the cycle collector runs they
    # would keep the unsealed PDF (20 MB for a big attachment) alive; closing the stream
    # lets its bytes go now (issue 13.6).
    source.close()
    return result


def seal_pdf(
    data: bytes,
    seal: SigningIdentity | IdentitySource,
    *,
    stamp: StampOptions | None = None,
    organisation_name: str | None = None,
) -> bytes:
    """Apply the organisation seal (PAdES B, incremental update, earlier signatures kept).

    The stamp shows ``organisation_name`` (default: the certificate's organisation name) and the
    signing time, e.g. ``2025-03-01T09:30:00+07:00``.
    """
    identity = seal if isinstance(seal, SigningIdentity) else seal.load()
    name = organisation_name or _organisation_name(identity)
    organ_id = organ_id_of(identity.certificate)
    reason = f"Organisation seal {organ_id}" if organ_id else "Organisation seal"
    return sign_pdf(
        data, identity, field_prefix=SEAL_FIELD_PREFIX, stamp=stamp, stamp_title=name,
        reason=reason,
    )


def _organisation_name(identity: SigningIdentity) -> str:
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        values = identity.certificate.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return identity.subject
