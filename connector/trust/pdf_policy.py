"""What PDF signatures each direction requires (rules R3 and R4), and the outbound seal step.

Outbound (:func:`seal_outbound`): every existing signature must be valid; the main document
must carry a valid personal signature before the organisation seal is added; every separate
attachment gets the seal. A document already carrying a valid seal of the same organisation is
not sealed twice (a retried message yields the same result).

Inbound (:func:`check_inbound`): every signature must be valid; the main document must carry a
valid personal and a valid organisation signature; each attachment must carry a valid
organisation signature; optionally the seal's OrganId must be the sender's.

Both are plain functions over bytes (worker-pool friendly). Failures raise PermanentError with
a stable reason: the first failing signature's reason, or ``personal_signature_missing``,
``organisation_signature_missing``, ``seal_organisation_mismatch``. The policy values come from
configuration; this module must not read configuration files itself.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from connector.errors import PermanentError
from connector.trust.keys import IdentitySource, SigningIdentity
from connector.trust.pdf_seal import StampOptions, seal_pdf
from connector.trust.pdf_verify import PdfReport, verify_pdf
from connector.trust.truststore import SignerKind, TrustStore, organ_id_of


class Role(enum.StrEnum):
    MAIN = "main"  # the signed document itself
    ATTACHMENT = "attachment"  # a separate file sent with it


@dataclass(frozen=True)
class PdfPolicy:
    """Requirements for one direction; defaults follow the regulation."""

    main_requires_personal: bool = True
    main_requires_seal: bool = True  # outbound: add it; inbound: must carry it
    attachments_require_seal: bool = True  # outbound: add it; inbound: must carry it
    # inbound: a seal must carry the sender's OrganId. Off by default: certificates of real
    # peers do not always carry the OrganId in their subject.
    seal_must_match_sender: bool = False
    stamp: StampOptions = field(default_factory=lambda: StampOptions(visible=True))


OUTBOUND_DEFAULT = PdfPolicy()
INBOUND_DEFAULT = PdfPolicy()


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` looks like a PDF (header within the first KiB, as readers allow)."""
    return b"%PDF-" in data[:1024]


def _require_all_valid(report: PdfReport, what: str) -> None:
    for failure in report.failures:
        reason = failure.reason or "signature_invalid"
        raise PermanentError(f"{what}: {failure.problem}", reason=reason)


def _seals(report: PdfReport) -> tuple[str | None, ...]:
    return tuple(s.organ_id for s in report.valid_of(SignerKind.ORGANISATION))


def seal_outbound(
    data: bytes,
    role: Role,
    seal: SigningIdentity | IdentitySource,
    trust: TrustStore,
    policy: PdfPolicy = OUTBOUND_DEFAULT,
    *,
    name: str = "document",
) -> bytes:
    """Check an outgoing PDF and return it sealed (or unchanged if the policy adds no seal)."""
    report = verify_pdf(data, trust)
    _require_all_valid(report, f"outgoing {role} {name}")
    if role is Role.MAIN and policy.main_requires_personal and not report.valid_of(
        SignerKind.PERSONAL
    ):
        raise PermanentError(
            f"outgoing main document {name} carries no valid personal signature; "
            "it must be signed by the signer before the organisation seal is added",
            reason="personal_signature_missing",
        )
    wanted = policy.main_requires_seal if role is Role.MAIN else policy.attachments_require_seal
    if not wanted:
        return data
    identity = seal if isinstance(seal, SigningIdentity) else seal.load()
    if organ_id_of(identity.certificate) in _seals(report):
        return data
    return seal_pdf(data, identity, stamp=policy.stamp)


def check_inbound(
    data: bytes,
    role: Role,
    trust: TrustStore,
    policy: PdfPolicy = INBOUND_DEFAULT,
    *,
    sender_organ_id: str | None = None,
    name: str = "document",
) -> PdfReport:
    """Verify an incoming PDF against the policy; return the report or raise PermanentError."""
    report = verify_pdf(data, trust)
    what = f"incoming {role} {name}"
    _require_all_valid(report, what)
    if role is Role.MAIN and policy.main_requires_personal and not report.valid_of(
        SignerKind.PERSONAL
    ):
        raise PermanentError(
            f"{what} carries no valid personal signature", reason="personal_signature_missing"
        )
    wanted = policy.main_requires_seal if role is Role.MAIN else policy.attachments_require_seal
    if wanted:
        seals = _seals(report)
        if not seals:
            raise PermanentError(
                f"{what} carries no valid organisation signature (seal)",
                reason="organisation_signature_missing",
            )
        if policy.seal_must_match_sender and sender_organ_id and sender_organ_id not in seals:
            raise PermanentError(
                f"{what} is sealed by {', '.join(str(s) for s in seals)}, "
                f"not by the sender {sender_organ_id}",
                reason="seal_organisation_mismatch",
            )
    return report
