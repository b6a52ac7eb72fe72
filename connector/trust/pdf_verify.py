"""Verify every signature of a PDF against the trust store, with pyHanko's diff analysis.

For each signature: who signed (personal or organisation, by the rule of
:func:`connector.trust.truststore.certificate_kind`), integrity of the signed bytes, the
cryptographic signature, the chain to the trust store with revocation from its CRLs, key usage,
and whether later revisions changed the document beyond what signing allows. The verdict of a
signature is pyHanko's ``bottom_line`` (a signed PDF whose page content was replaced by an
incremental update is therefore not valid), tightened so that a signature whose later revisions
could not be analysed is not valid either.

:func:`verify_pdf` is a plain function over bytes (CPU-bound; the daemon may run it in a worker
pool; the trust store pickles). It reports, it does not decide: requirements per direction are
in :mod:`connector.trust.pdf_policy`. This module must not sign or modify documents.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel

from connector.errors import PermanentError
from connector.timeutil import VN_TZ
from connector.trust import library_logs, pdf_fastparse
from connector.trust.binding import SignerFacts
from connector.trust.truststore import (
    Purpose,
    SignerKind,
    TrustStore,
    certificate_kind,
    check_usage,
    organ_id_of,
    subject_of,
)

pdf_fastparse.install()  # signature /Contents read in blocks: pyHanko's results, less CPU
library_logs.install()  # pyHanko's warnings quote certificate subjects: escaped

_KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)


@dataclass(frozen=True)
class SignatureReport:
    """The outcome for one signature; ``reason`` is a stable code when ``ok`` is False."""

    field_name: str
    signer: str  # subject of the signing certificate
    kind: SignerKind | None
    organ_id: str | None
    signing_time: dt.datetime | None
    intact: bool  # the signed bytes hash to the signed digest
    valid: bool  # the cryptographic signature verifies
    trusted: bool  # chain to the trust store, validity, revocation, key usage
    coverage: str
    modification: str  # pyHanko modification level of later revisions
    ok: bool
    reason: str | None = None
    problem: str | None = None
    facts: SignerFacts | None = None  # for sender binding (connector.trust.binding)
    # "<algorithm>:<hex>" of the signed byte ranges (what the signature's messageDigest
    # vouches for): the same for every copy of one signing act, whatever wraps it; the
    # inbound seal index recognises a sealed document lifted into another package by it.
    signed_digest: str | None = None

    @property
    def total_document(self) -> bool:
        return self.coverage == SignatureCoverageLevel.ENTIRE_FILE.name


@dataclass(frozen=True)
class PdfReport:
    """Every signature of one PDF, in document order (earliest first)."""

    signatures: tuple[SignatureReport, ...]

    @property
    def all_ok(self) -> bool:
        return bool(self.signatures) and all(s.ok for s in self.signatures)

    def valid_of(self, kind: SignerKind) -> tuple[SignatureReport, ...]:
        return tuple(s for s in self.signatures if s.ok and s.kind is kind)

    @property
    def failures(self) -> tuple[SignatureReport, ...]:
        return tuple(s for s in self.signatures if not s.ok)


def _cryptography_cert(certificate: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def _trust_failure(
    trust: TrustStore, signer: x509.Certificate, others: list[x509.Certificate],
    status: PdfSignatureStatus,
) -> tuple[str, str]:
    """Stable reason and message for an untrusted signer (re-checked for a precise reason)."""
    try:
        trust.validate(signer, others, purpose=Purpose.SIGNING)
    except PermanentError as exc:
        return exc.reason, exc.message
    indication = status.trust_problem_indic
    return "cert_invalid", f"signer {subject_of(signer)} not trusted ({indication})"


def _judge(
    embedded: EmbeddedPdfSignature, status: PdfSignatureStatus, trust: TrustStore,
    signer: x509.Certificate | None,
) -> tuple[bool, str | None, str | None]:
    name = embedded.field_name
    if not status.intact:
        return False, "signature_tampered", (
            f"signature {name}: the signed bytes were changed after signing")
    if not status.valid:
        return False, "signature_invalid", f"signature {name}: the signature value does not verify"
    if signer is not None:
        try:
            check_usage(signer, Purpose.SIGNING)
        except PermanentError as exc:
            return False, exc.reason, f"signature {name}: {exc.message}"
    if not status.trusted or status.revoked:
        assert signer is not None
        others = [_cryptography_cert(c) for c in embedded.other_embedded_certs]
        reason, message = _trust_failure(trust, signer, others, status)
        return False, reason, f"signature {name}: {message}"
    level = status.modification_level
    if not status.docmdp_ok and level is not None:
        return False, "document_modified", (
            f"signature {name}: the document was changed after signing "
            f"({level.name.lower()}), not only by later signatures or form filling")
    if level is None and status.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
        return False, "document_modified", (
            f"signature {name}: later revisions could not be analysed")
    if status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE,
                               SignatureCoverageLevel.ENTIRE_REVISION):
        return False, "signature_coverage", f"signature {name} does not cover its whole revision"
    if not status.bottom_line:
        return False, "signature_invalid", f"signature {name} is not valid ({status.summary()})"
    return True, None, None


def _report(embedded: EmbeddedPdfSignature, trust: TrustStore) -> SignatureReport:
    name = embedded.field_name
    try:
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=trust.validation_context(),
            key_usage_settings=_KEY_USAGE,
        )
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        return SignatureReport(
            field_name=name, signer="?", kind=None, organ_id=None, signing_time=None,
            intact=False, valid=False, trusted=False, coverage="?", modification="?",
            ok=False, reason="signature_unreadable",
            problem=f"signature {name} cannot be read: {exc}",
        )
    signer = _cryptography_cert(status.signing_cert) if status.signing_cert else None
    ok, reason, problem = _judge(embedded, status, trust, signer)
    when = status.signer_reported_dt
    level = status.modification_level
    return SignatureReport(
        field_name=name,
        signer=subject_of(signer) if signer else "?",
        kind=certificate_kind(signer) if signer else None,
        organ_id=organ_id_of(signer) if signer else None,
        signing_time=when.astimezone(VN_TZ) if when else None,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted) and not status.revoked,
        coverage=status.coverage.name if status.coverage else "?",
        modification=level.name if isinstance(level, ModificationLevel) else "?",
        ok=ok,
        reason=reason,
        problem=problem,
        facts=SignerFacts.of(signer) if signer else None,
        signed_digest=_signed_digest(embedded) if status.intact else None,
    )


def _signed_digest(embedded: EmbeddedPdfSignature) -> str:
    """The byte-range digest (cached by pyHanko from the integrity check, not recomputed)."""
    algorithm = embedded.external_md_algorithm
    return f"{algorithm}:{embedded.compute_digest(algorithm).hex()}"


def verify_pdf(data: bytes, trust: TrustStore) -> PdfReport:
    """Report on every signature of ``data``; raise PermanentError if it is not a readable PDF."""
    source = io.BytesIO(data)
    try:
        reader = PdfFileReader(source, strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise PermanentError(f"not a readable PDF: {exc}", reason="pdf_unreadable") from exc
    report = PdfReport(signatures=tuple(_report(sig, trust) for sig in embedded))
    # The reader's objects form cycles: closed, the stream no longer keeps ``data`` alive
    # until the cycle collector runs (issue 13.6).
    source.close()
    return report
