"""Trust on receipt: is this package from the organisation in its From, and addressed to us?

One decision, used by the daemon (``connector.daemon.inbound``) and by ``connector verify``
alike, so both reach the same verdict:

1. **Routing.** A document whose To list names none of our organisations is refused
   (``not_addressed_to_us``): it was misrouted, and no one is answered.
2. **Sender binding.** A package is authentic when a signature that can vouch for an
   organisation binds it to its From (rules in :mod:`connector.trust.binding`): the XML
   signature by that organisation's certificate, or — for packages carrying only the QCVN
   placeholder, which real traffic is full of — the organisation seal on the main document.
   A certificate bound to *another* organisation is refused at once (``signer_mismatch`` for
   the XML signature, ``seal_organisation_mismatch`` for a seal on any PDF). Personal
   certificates vouch for a person only.
3. **No binding known.** When only organisation certificates that no rule binds to any
   OrganId signed it (a peer whose CA writes no OrganId and for which no pin or issued name
   is configured), ``when_unbound`` decides: ``deliver_unverified`` (default: real traffic
   still arrives, marked ``sender_unverified`` with who signed, counted, never answered with
   a 02, a status never changes tracking) or ``refuse`` (``sender_not_bound``). A package
   that nothing organisational signed at all is refused (``signature_missing``, or
   ``sender_not_bound`` when only personal certificates signed it).
4. **Statuses** follow the same rules; the only other way in is ``unsigned_status_from``
   (the operator names the peers whose statuses carry no usable signature).

Refusals are :class:`Refusal` (a ``PermanentError``) telling whether the sender's identity was
established before the refusal: only then may a 02 go back. This module decides; it must not
verify signatures itself, read configuration, or talk to the store or the hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from connector.errors import PermanentError
from connector.trust.binding import Binding, BindingRules, SignerFacts
from connector.trust.content import AttachmentChecks
from connector.trust.xmldsig import VerifiedPackage

UnboundPolicy = Literal["deliver_unverified", "refuse"]


class Refusal(PermanentError):
    """A package refused on receipt; ``sender_established`` says whether a 02 may go back.
    ``seal_digests``: when the seal on the main document established the sender, its signed
    digests — a seal seen before (a replay) establishes no one (the daemon asks its store)."""

    def __init__(self, message: str, *, reason: str, sender_established: bool,
                 stage: str = "authenticity", seal_digests: tuple[str, ...] = ()) -> None:
        super().__init__(message, reason=reason, stage=stage)
        self.sender_established = sender_established
        self.seal_digests = seal_digests


@dataclass(frozen=True)
class OriginPolicy:
    """The trust policy on receipt (``trust.sender_binding`` and ``trust.xml_signature``)."""

    rules: BindingRules = field(default_factory=BindingRules)
    when_unbound: UnboundPolicy = "deliver_unverified"
    seals_must_be_bound: bool = False  # every seal bound to the sender (no unbound seal)
    unsigned_status_from: frozenset[str] = frozenset()


@dataclass(frozen=True)
class XmlFacts:
    """The package's XML signature as far as binding is concerned."""

    signed: bool  # a real XML-DSig verified
    placeholder: bool  # only the legacy QCVN placeholder
    signer: SignerFacts | None = None

    @classmethod
    def of(cls, verified: VerifiedPackage) -> XmlFacts:
        placeholder = any(d.code == "legacy_placeholder_accepted" for d in verified.decisions)
        signer = SignerFacts.of(verified.signer) if verified.signer is not None else None
        return cls(verified.signed, placeholder, signer)

    def describe(self) -> str:
        if self.signer is not None:
            return f"an XML signature by the {self.signer.kind} certificate {self.signer.subject}"
        return "only the QCVN placeholder signature" if self.placeholder else "no signature"


@dataclass(frozen=True)
class Origin:
    """The verdict on who sent a package that is accepted."""

    established: bool  # bound to its From (or a status taken by ``unsigned_status_from``)
    via: str  # "xml_signature", "main_document_seal", "unsigned_status_from", "none"
    unverified_signers: tuple[str, ...] = ()  # when delivered ``sender_unverified``

    @property
    def unverified(self) -> bool:
        return not self.established

    def note(self, claimed: str) -> str:
        if self.established:
            return f"sender {claimed} established by {self.via.replace('_', ' ')}"
        return (f"sender_unverified: no rule binds a signer to {claimed}; signed by "
                + "; ".join(self.unverified_signers))


def check_addressed(to_organ_ids: Iterable[str], ours: Iterable[str]) -> None:
    """Refuse a document whose To list names none of our organisations."""
    wanted = {o.strip().casefold() for o in ours}
    if not any(t.strip().casefold() in wanted for t in to_organ_ids):
        raise Refusal(
            "the document is not addressed to this agency (its To list does not name us)",
            reason="not_addressed_to_us", sender_established=False, stage="routing",
        )


def xml_binding(policy: OriginPolicy, xml: XmlFacts, claimed: str) -> Binding | None:
    """The XML signer against From; a signer bound to another organisation is refused."""
    if xml.signer is None:
        return None
    binding = policy.rules.judge(xml.signer, claimed)
    if binding is Binding.MISMATCH:
        raise Refusal(
            f"the package says it is from {claimed} but is XML-signed by {xml.signer.subject}, "
            "a certificate of another organisation",
            reason="signer_mismatch", sender_established=False,
        )
    return binding


def decide(
    policy: OriginPolicy, *, kind: str, claimed: str, xml: XmlFacts,
    checks: AttachmentChecks | None,
) -> Origin:
    """The verdict for one package (see the module docstring); raises :class:`Refusal`."""
    binding = xml_binding(policy, xml, claimed)
    via = "xml_signature" if binding is Binding.BOUND else None
    by_seal: tuple[str, ...] = ()  # the main seal's digests, when it established the sender
    unbound: list[str] = []
    if binding is Binding.UNBOUND and xml.signer is not None:
        unbound.append(f"XML signature: {xml.signer.subject}")
    for item in checks.items if checks is not None else ():
        for seal in item.seals:
            judged = policy.rules.judge(seal, claimed)
            if judged is Binding.MISMATCH or (judged is Binding.UNBOUND
                                              and policy.seals_must_be_bound):
                raise Refusal(
                    f"the package says it is from {claimed} but attachment {item.content_id} "
                    f"is sealed by {seal.subject}"
                    + (", a certificate of another organisation" if judged is Binding.MISMATCH
                       else ", which no rule binds to the sender"),
                    reason="seal_organisation_mismatch", sender_established=via is not None,
                    seal_digests=by_seal,
                )
            if item.role == "main":
                if judged is Binding.BOUND and via is None:
                    via, by_seal = "main_document_seal", item.seal_digests
                elif judged is Binding.UNBOUND:
                    unbound.append(f"seal on the main document: {seal.subject}")
    if checks is not None and checks.failures:
        first = checks.failures[0]
        raise Refusal(first.problem or first.note, reason=first.reason or "attachment_invalid",
                      sender_established=via is not None, stage="pdf_verify",
                      seal_digests=by_seal)
    if via is not None:
        return Origin(True, via)
    if kind == "status" and claimed in policy.unsigned_status_from:
        return Origin(True, "unsigned_status_from")
    if unbound:
        if policy.when_unbound == "deliver_unverified":
            return Origin(False, "none", tuple(unbound))
        raise Refusal(
            f"no rule binds the signer(s) to the sender {claimed} ({'; '.join(unbound)}) and "
            "the policy refuses unbound senders (trust.sender_binding.when_unbound: refuse)",
            reason="sender_not_bound", sender_established=False,
        )
    what = xml.describe()
    if xml.signer is not None:
        raise Refusal(
            f"the package carries {what}: a personal certificate vouches for a person, not "
            f"for the organisation {claimed}, and no organisation seal binds it",
            reason="sender_not_bound", sender_established=False,
        )
    where = ("and no seal of the organisation on its main document" if kind == "edoc"
             else "and its sender is not listed in unsigned_status_from")
    raise Refusal(
        f"the package carries {what} {where}: its origin cannot be verified",
        reason="signature_missing", sender_established=False,
    )
