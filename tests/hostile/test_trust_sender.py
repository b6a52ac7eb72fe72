"""Sender binding, every combination: From × XML signer × seal on the main document.

Agencies A and C are peers, B receives. For each combination the verdict of B's checks on
receipt (``inbound.authenticate``, the daemon's one function) is compared with an oracle
written from the policy alone (README "Trust policy on receipt"): the package is authentic
only when an organisation certificate bound to its From signed it — the XML signature, or
the seal on the main document; a certificate bound to another organisation is refused; an
organisation certificate no rule binds leaves the sender unverified (delivered marked, or
refused by policy); personal certificates never vouch for an organisation.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from connector.daemon import inbound
from connector.daemon.adapters import VerifierAdapter
from connector.daemon.ports import Services
from connector.daemon.wiring import Runtime
from connector.trust.binding import BindingRules, PeerBinding, SignerFacts
from connector.trust.origin import Refusal
from tests.e2e.inprocess import runtime, world  # noqa: F401
from tests.hostile.trust_kit import Kit, document, organ_id, packaged, pdf

FROMS = ("A", "C")
XML_SIGNERS = ("placeholder", "seal:A", "seal:B", "seal:C", "personal:A", "personal:B",
               "personal:C", "unbound:A")
MAIN_SEALS = ("seal:A", "seal:C", "unbound:A", "none", "no files")  # no files: e.g. a revocation


def _with_policy(services: Services, **changes: object) -> Services:
    verifier = services.verifier
    assert isinstance(verifier, VerifierAdapter)
    origin = dataclasses.replace(verifier.origin, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(services, verifier=dataclasses.replace(verifier, origin=origin))


def _bound_to(signer: str) -> str | None:
    """The agency an identity's certificate is bound to by default (OrganId in it)."""
    kind, _, agency = signer.partition(":")
    return agency if kind == "seal" else None


def expected(from_: str, xml: str, seal: str, when_unbound: str) -> tuple[str, bool]:
    """``(verdict, sender_established)``; verdict ``verified``, ``unverified`` or a reason."""
    xml_bound = _bound_to(xml)
    if xml_bound is not None and xml_bound != from_:
        return "signer_mismatch", False
    established = xml_bound == from_
    unbound = xml.startswith("unbound")
    seal_bound = _bound_to(seal)
    if seal_bound is not None and seal_bound != from_:
        return "seal_organisation_mismatch", established
    if seal == "none":
        return "organisation_signature_missing", established
    if seal == "no files":
        seal = ""
    established = established or seal_bound == from_
    unbound = unbound or seal.startswith("unbound")
    if established:
        return "verified", True
    if unbound:
        return ("unverified", False) if when_unbound == "deliver_unverified" else (
            "sender_not_bound", False)
    if xml.startswith("personal"):
        return "sender_not_bound", False
    return "signature_missing", False


def _verdict(services: Services, raw: bytes) -> tuple[str, bool]:
    try:
        received = inbound.authenticate(services, raw)
    except Refusal as exc:
        return exc.reason, exc.sender_established
    if received.origin.established:
        return "verified", True
    assert received.origin.unverified_signers, "an unverified sender must say who signed"
    return "unverified", False


COMBINATIONS = list(itertools.product(FROMS, XML_SIGNERS, MAIN_SEALS))


@pytest.mark.parametrize("when_unbound", ["deliver_unverified", "refuse"])
def test_every_signer_from_and_seal_combination(
    b: Runtime, kit: Kit, when_unbound: str
) -> None:
    services = _with_policy(b.services, when_unbound=when_unbound)
    wrong: list[str] = []
    seen: set[str] = set()
    for from_, xml, seal in COMBINATIONS:
        if when_unbound == "refuse" and "unbound" not in xml + seal:
            continue  # the policy changes nothing else
        files = () if seal == "no files" else (
            pdf("1", kit.main_pdf(seal)),
            pdf("2", kit.annex_pdf(seal if seal != "none" else "seal:" + from_)),
        )
        package = document(from_, attachments=files)
        got = _verdict(services, packaged(kit, package, xml))
        want = expected(from_, xml, seal, when_unbound)
        seen.add(got[0])
        if got != want:
            wrong.append(f"From={from_} xml={xml} seal={seal}: got {got}, want {want}")
    assert not wrong, "\n".join(wrong)
    verdicts = {"verified", "unverified", "signer_mismatch", "seal_organisation_mismatch",
                "organisation_signature_missing", "sender_not_bound", "signature_missing"}
    if when_unbound == "refuse":
        verdicts -= {"unverified", "signature_missing"}
    assert seen == verdicts  # the family reaches every verdict


@pytest.mark.parametrize("rule", ["pinned certificate", "pinned key", "issued name"])
def test_a_configured_binding_makes_an_unbound_seal_vouch_for_its_organisation(
    b: Runtime, kit: Kit, rule: str
) -> None:
    facts = SignerFacts.of(kit.identity("unbound:A").certificate)
    binding = {
        "pinned certificate": PeerBinding(organ_id("A"),
                                          pinned_sha256=frozenset({facts.certificate_sha256})),
        "pinned key": PeerBinding(organ_id("A"), pinned_sha256=frozenset({facts.key_sha256})),
        "issued name": PeerBinding(organ_id("A"), issued_names=frozenset(
            {facts.names[0].upper()})),
    }[rule]
    services = _with_policy(b.services, rules=BindingRules.of([binding]))
    main = pdf("1", kit.main_pdf("unbound:A"))
    for xml in ("placeholder", "unbound:A"):
        received = inbound.authenticate(services, packaged(kit, document("A", attachments=(
            main,)), xml))
        assert received.origin.established
    # Bound to A, the same certificate is now a mismatch for a package "from" C.
    with pytest.raises(Refusal) as caught:
        inbound.authenticate(services, packaged(kit, document("C", attachments=(main,)),
                                                "unbound:A"))
    assert caught.value.reason == "signer_mismatch"


def test_turning_off_the_organ_id_rule_for_a_peer_leaves_its_seal_unbound(
    b: Runtime, kit: Kit
) -> None:
    rules = BindingRules.of([PeerBinding(organ_id("A"), organ_id_in_certificate=False)])
    services = _with_policy(b.services, rules=rules)
    raw = packaged(kit, document("A", attachments=(pdf("1", kit.main_pdf("seal:A")),)),
                   "placeholder")
    received = inbound.authenticate(services, raw)
    assert received.origin.unverified
    assert any("OrganId=" not in s or "000.00.31.H12" in s
               for s in received.origin.unverified_signers)


def test_seals_must_be_bound_refuses_an_unbound_annex(b: Runtime, kit: Kit) -> None:
    services = _with_policy(b.services, seals_must_be_bound=True)
    raw = packaged(kit, document("A", attachments=(
        pdf("1", kit.main_pdf("seal:A")), pdf("2", kit.annex_pdf("unbound:A")))), "seal:A")
    with pytest.raises(Refusal) as caught:
        inbound.authenticate(services, raw)
    assert caught.value.reason == "seal_organisation_mismatch"
    assert caught.value.sender_established  # the XML signature had bound A: a 02 may go
