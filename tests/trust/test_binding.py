"""Sender binding rules: which OrganIds a certificate is bound to, by each rule."""

from __future__ import annotations

from connector.trust.binding import Binding, BindingRules, PeerBinding, SignerFacts
from connector.trust.keys import SigningIdentity
from connector.trust.truststore import SignerKind

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"


def _facts(kind: SignerKind = SignerKind.ORGANISATION, organ_id: str | None = A,
           names: tuple[str, ...] = ("Sở Nội vụ tỉnh Cà Mau",)) -> SignerFacts:
    return SignerFacts("CN=x", kind, organ_id, names, "c" * 64, "k" * 64)


def test_the_organ_id_in_an_organisation_certificate_binds_it_by_default() -> None:
    rules = BindingRules()
    assert rules.organisations_of(_facts()) == {A}
    assert rules.judge(_facts(), A) is Binding.BOUND
    assert rules.judge(_facts(), C) is Binding.MISMATCH


def test_personal_certificates_vouch_for_no_organisation_whatever_they_carry() -> None:
    personal = _facts(SignerKind.PERSONAL)
    pinned = BindingRules.of([PeerBinding(A, pinned_sha256=frozenset({"c" * 64}),
                                          issued_names=frozenset({"Sở Nội vụ tỉnh Cà Mau"}))])
    for rules in (BindingRules(), pinned):
        assert rules.organisations_of(personal) == frozenset()
        assert rules.judge(personal, A) is Binding.PERSONAL


def test_no_organ_id_and_no_rule_is_unbound() -> None:
    assert BindingRules().judge(_facts(organ_id=None), A) is Binding.UNBOUND


def test_pins_match_the_certificate_or_the_key_with_or_without_colons() -> None:
    by_cert = PeerBinding(A, pinned_sha256=frozenset({":".join(["CC"] * 32)}))
    by_key = PeerBinding(A, pinned_sha256=frozenset({"K" * 64}))
    for peer in (by_cert, by_key):
        assert BindingRules.of([peer]).judge(_facts(organ_id=None), A) is Binding.BOUND


def test_issued_names_compare_after_normalisation() -> None:
    peer = PeerBinding(A, issued_names=frozenset({"  SỞ NỘI VỤ   TỈNH CÀ MAU "}))
    assert BindingRules.of([peer]).judge(_facts(organ_id=None), A) is Binding.BOUND


def test_a_peer_can_turn_the_organ_id_rule_off_and_the_default_can_be_off() -> None:
    off = BindingRules.of([PeerBinding(A, organ_id_in_certificate=False)])
    assert off.judge(_facts(), A) is Binding.UNBOUND
    nowhere = BindingRules.of([], organ_id_in_certificate=False)
    assert nowhere.judge(_facts(organ_id=C), C) is Binding.UNBOUND


def test_entries_for_the_same_peer_are_merged() -> None:
    rules = BindingRules.of([PeerBinding(A, pinned_sha256=frozenset({"c" * 64})),
                             PeerBinding(A, issued_names=frozenset({"Other"}))])
    assert rules.judge(_facts(organ_id=None, names=("Other",)), A) is Binding.BOUND
    assert rules.judge(_facts(organ_id=None, names=("Nobody",)), A) is Binding.BOUND  # pin


def test_facts_of_the_demo_certificates(seal_a: SigningIdentity, signer_a: SigningIdentity
                                        ) -> None:
    seal, person = SignerFacts.of(seal_a.certificate), SignerFacts.of(signer_a.certificate)
    assert seal.kind is SignerKind.ORGANISATION and seal.organ_id == A
    assert person.kind is SignerKind.PERSONAL and person.organ_id is None
    assert len(seal.certificate_sha256) == len(seal.key_sha256) == 64
    assert seal.certificate_sha256 != seal.key_sha256
