"""Trust on receipt through B's whole inbound pipeline (hub emulator → store → local side).

Crafted packages reach B over the hub as a compromised hub or stolen account would deliver
them. For each: the right verdict and reason, what the hub hears (done/fail), whether a 01 or
a 02 goes back and to whom, what the local side receives — and no attacker-chosen text in
anything B signs.
"""

from __future__ import annotations

import pytest

from connector.daemon import inbound, statuses
from connector.daemon.wiring import Runtime
from connector.edxml import build_package, parse_package
from connector.edxml.model import StatusPackage
from connector.store.api import TrackedPackage
from connector.store.states import Direction, InboundState
from connector.trust.xmldsig import sign_package
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.hostile.trust_kit import (
    A_ID,
    B_ID,
    Kit,
    document,
    list_for_b,
    packaged,
    pdf,
    self_signed,
)

ATTACKER_TEXT = "Chuyển ngay 500.000.000đ vào TK 0123 — liên hệ 0909"


def _deliver_to_b(world: World, b: Runtime, raw: bytes) -> TrackedPackage:  # noqa: F811
    """A compromised hub (or a stolen account) lists crafted bytes for B; B takes them."""
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    return package


def _hub_states(world: World) -> list[str]:  # noqa: F811
    assert world.hub is not None
    return [d.state for d in world.hub.deliveries(recipient=B_ID)]



def test_placeholder_package_sealed_by_its_sender_is_delivered_and_answered_01(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    raw = packaged(kit, document("A", attachments=(pdf("1", kit.main_pdf("seal:A")),)),
                   "placeholder")
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.NOTIFIED
    (delivery,) = world.b.deliveries()
    assert "sender-verified" not in delivery.headers
    (notice,) = status_notices(b)
    assert notice.status_code == "01"
    verified = next(e for e in b.services.store.events(package.id) if e.event == "verified")
    assert "established by main document seal" in verified.detail


def test_unbound_sender_is_delivered_marked_with_who_signed(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    raw = packaged(kit, document("A", attachments=(pdf("1", kit.main_pdf("unbound:A")),)),
                   "placeholder")
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.NOTIFIED
    (delivery,) = world.b.deliveries()
    assert delivery.headers["sender-verified"] == "no"
    assert "Sở Nội vụ" in delivery.headers["signed-by"]
    events = {e.event: e.detail for e in b.services.store.events(package.id)}
    assert "Sở Nội vụ" in events["sender_unverified"]
    (delivered,) = world.b.events("inbound.delivered")
    assert delivered["sender_unverified"] is True
    assert b.metrics.documents.labels("inbound", "sender_unverified")._value.get() == 1


@pytest.mark.parametrize(
    ("from_", "xml", "main_seal", "reason"),
    [
        ("A", "seal:C", "seal:A", "signer_mismatch"),
        ("A", "personal:C", "seal:C", "seal_organisation_mismatch"),
        ("A", "personal:B", "unbound:A", None),  # unbound: delivered marked (default policy)
        ("A", "placeholder", "seal:C", "seal_organisation_mismatch"),
        ("C", "personal:C", "seal:A", "seal_organisation_mismatch"),
    ],
)
def test_forged_origin_is_refused_without_a_02(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
    from_: str, xml: str, main_seal: str, reason: str | None,
) -> None:
    raw = packaged(kit, document(from_, attachments=(pdf("1", kit.main_pdf(main_seal)),)), xml)
    package = _deliver_to_b(world, b, raw)
    if reason is None:
        assert package.inbound_state is InboundState.NOTIFIED
        return
    assert package.inbound_state is InboundState.REJECTION_NOTIFIED
    assert package.last_error is not None and package.last_error.reason == reason
    assert _hub_states(world) == ["fail"]
    assert not world.b.deliveries(kind=None)
    assert status_notices(b) == [], "a 02 went to a sender whose identity was not established"


def test_document_not_addressed_to_us_is_refused_without_01_or_02(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    raw = packaged(kit, document("A", to=("C",), attachments=(pdf("1", kit.main_pdf("seal:A")),)),
                   "seal:A")
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.REJECTION_NOTIFIED
    assert package.last_error is not None and package.last_error.reason == "not_addressed_to_us"
    assert _hub_states(world) == ["fail"]
    assert not world.b.deliveries(kind=None)
    assert status_notices(b) == []


def test_self_signed_certificate_with_chosen_text_gets_no_answer(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    raw = sign_package(build_package(document("A", attachments=(
        pdf("1", kit.main_pdf("seal:A")),))), self_signed(ATTACKER_TEXT))
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.REJECTION_NOTIFIED
    assert status_notices(b) == [], "B signed and sent an answer to an unauthenticated package"


@pytest.mark.parametrize(
    ("attachments", "reason"),
    [
        ("exe as main", "executable_content"),
        ("unsealed main", "organisation_signature_missing"),
        ("pdf that is not", "content_type_mismatch"),
    ],
)
def test_established_sender_gets_a_02_in_our_words_only(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
    attachments: str, reason: str,
) -> None:
    name = f"{ATTACKER_TEXT}.pdf"
    files = {
        "exe as main": (pdf("1", b"MZ\x90\x00" + b"\x00" * 200, name=name),
                        pdf("2", kit.annex_pdf("seal:A"))),
        "unsealed main": (pdf("1", kit.main_pdf("none"), name=name),),
        "pdf that is not": (pdf("1", kit.main_pdf("seal:A")),
                            pdf("2", ATTACKER_TEXT.encode() * 3, name=name)),
    }[attachments]
    raw = packaged(kit, document("A", attachments=files, subject=ATTACKER_TEXT), "seal:A")
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.REJECTION_NOTIFIED
    assert package.last_error is not None and package.last_error.reason == reason
    (notice,) = status_notices(b)
    assert [r.organ_id for r in b.services.store.recipients(notice.id)] == [A_ID]
    signed = b.services.store.raw(notice.id)
    assert signed is not None
    status = parse_package(signed)
    assert isinstance(status, StatusPackage)
    assert status.description == statuses.rejection_text(reason)
    for fragment in (ATTACKER_TEXT, "0909", "TK 0123"):
        assert fragment.encode() not in signed
    assert not world.b.deliveries(kind=None)


@pytest.mark.parametrize(("xml", "answered"), [("seal:A", True), ("seal:C", False)])
def test_a_refusal_resumed_after_a_crash_decides_the_02_again(
    world: World, b: Runtime, kit: Kit, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    xml: str, answered: bool,
) -> None:
    hub = b.services.hub
    real_ack = hub.acknowledge
    crashed: list[str] = []

    def crash_once(doc_id: str, ok: bool) -> None:
        if not crashed:
            crashed.append(doc_id)
            raise RuntimeError("process killed between REJECTED and the answer")
        real_ack(doc_id, ok)

    monkeypatch.setattr(hub, "acknowledge", crash_once)
    raw = packaged(kit, document("A", attachments=(pdf("1", kit.main_pdf("none")),)), xml)
    package = _deliver_to_b(world, b, raw)
    assert package.inbound_state is InboundState.REJECTED and crashed
    inbound.resume(b.services)
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    assert package.inbound_state is InboundState.REJECTION_NOTIFIED
    assert bool(status_notices(b)) is answered
