"""The verdict on receipt (``origin.decide``), on plain facts: the order of its rules."""

from __future__ import annotations

import pytest

from connector.trust.binding import BindingRules, SignerFacts
from connector.trust.content import AttachmentCheck, AttachmentChecks
from connector.trust.origin import OriginPolicy, Refusal, XmlFacts, check_addressed, decide
from connector.trust.truststore import SignerKind

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"


def _org(organ_id: str | None) -> SignerFacts:
    return SignerFacts(f"CN=seal {organ_id}", SignerKind.ORGANISATION, organ_id, (),
                       "c" * 64, "k" * 64)


PERSON = SignerFacts("CN=person", SignerKind.PERSONAL, None, (), "p" * 64, "q" * 64)
PLACEHOLDER = XmlFacts(False, True)


def _main(*seals: SignerFacts, reason: str | None = None) -> AttachmentChecks:
    return AttachmentChecks((AttachmentCheck("1", "main.pdf", "main", "note", seals,
                                             reason=reason, problem=reason),))


def test_a_bound_xml_signature_establishes_the_sender() -> None:
    origin = decide(OriginPolicy(), kind="edoc", claimed=A, xml=XmlFacts(True, False, _org(A)),
                    checks=None)
    assert origin.established and origin.via == "xml_signature"


def test_a_bound_main_seal_establishes_a_placeholder_package() -> None:
    origin = decide(OriginPolicy(), kind="edoc", claimed=A, xml=PLACEHOLDER, checks=_main(_org(A)))
    assert origin.established and origin.via == "main_document_seal"


def test_a_failure_after_the_binding_may_be_answered() -> None:
    with pytest.raises(Refusal) as caught:
        decide(OriginPolicy(), kind="edoc", claimed=A, xml=XmlFacts(True, False, _org(A)),
               checks=_main(reason="organisation_signature_missing"))
    assert caught.value.sender_established


def test_mismatches_are_refused_before_anything_else() -> None:
    with pytest.raises(Refusal) as caught:
        decide(OriginPolicy(), kind="edoc", claimed=A, xml=XmlFacts(True, False, _org(C)),
               checks=_main(_org(A)))
    assert caught.value.reason == "signer_mismatch" and not caught.value.sender_established
    with pytest.raises(Refusal) as caught:
        decide(OriginPolicy(), kind="edoc", claimed=A, xml=PLACEHOLDER,
               checks=_main(_org(A), _org(C)))
    assert caught.value.reason == "seal_organisation_mismatch"


@pytest.mark.parametrize("when", ["deliver_unverified", "refuse"])
def test_unbound_signers_follow_the_policy(when: str) -> None:
    policy = OriginPolicy(when_unbound=when)  # type: ignore[arg-type]
    args = dict(kind="edoc", claimed=A, xml=PLACEHOLDER, checks=_main(_org(None)))
    if when == "refuse":
        with pytest.raises(Refusal) as caught:
            decide(policy, **args)  # type: ignore[arg-type]
        assert caught.value.reason == "sender_not_bound"
        return
    origin = decide(policy, **args)  # type: ignore[arg-type]
    assert origin.unverified and origin.unverified_signers == ("seal on the main document: "
                                                                "CN=seal None",)


def test_personal_only_and_nothing_at_all_are_refused() -> None:
    with pytest.raises(Refusal) as caught:
        decide(OriginPolicy(), kind="status", claimed=A, xml=XmlFacts(True, False, PERSON),
               checks=None)
    assert caught.value.reason == "sender_not_bound"
    with pytest.raises(Refusal) as caught:
        decide(OriginPolicy(), kind="status", claimed=A, xml=PLACEHOLDER, checks=None)
    assert caught.value.reason == "signature_missing"


def test_unsigned_status_from_is_the_only_other_way_for_a_status() -> None:
    policy = OriginPolicy(unsigned_status_from=frozenset({A}))
    assert decide(policy, kind="status", claimed=A, xml=PLACEHOLDER, checks=None).established
    with pytest.raises(Refusal):
        decide(policy, kind="edoc", claimed=A, xml=PLACEHOLDER, checks=None)
    with pytest.raises(Refusal):
        decide(policy, kind="status", claimed=C, xml=PLACEHOLDER, checks=None)


def test_seals_must_be_bound_refuses_unbound_seals() -> None:
    policy = OriginPolicy(rules=BindingRules(), seals_must_be_bound=True)
    with pytest.raises(Refusal) as caught:
        decide(policy, kind="edoc", claimed=A, xml=XmlFacts(True, False, _org(A)),
               checks=_main(_org(None)))
    assert caught.value.reason == "seal_organisation_mismatch"


def test_routing_names_us_in_to() -> None:
    check_addressed([C, f" {B.lower()} "], [B])
    with pytest.raises(Refusal) as caught:
        check_addressed([A, C], [B])
    assert caught.value.reason == "not_addressed_to_us" and not caught.value.sender_established
    with pytest.raises(Refusal):
        check_addressed([], [B])
