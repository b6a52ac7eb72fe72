"""Replayed seals and replayed documents through B's whole inbound pipeline.

A compromised hub (or a stolen account) has seen A's genuine packages to B. It lifts A's
sealed main document into new metadata (another DocumentId, another sender, another
subject), or lists the genuine package again with bytes that differ where nothing is signed
(stray bytes before ``<?xml``, line endings, an added TraceHeader). For each: the verdict and
its reason, what the hub hears, that B still runs, that nothing is delivered twice and that
no 02 goes to anyone for a refused replay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.edxml.model import Business, BusinessDocType, EdocPackage
from connector.store.api import TrackedPackage
from connector.store.states import Direction, InboundState
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.hostile.trust_kit import B_ID, C_ID, Kit, document, list_for_b, packaged, pdf

_S = InboundState


def _list_for_b(world: World, b: Runtime, raw: bytes) -> TrackedPackage:  # noqa: F811
    """The hub lists ``raw`` for B; B takes it; the newest inbound package is returned."""
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1
    return max(b.services.store.find(direction=Direction.INBOUND, limit=100), key=lambda p: p.id)


def _genuine(kit: Kit) -> EdocPackage:
    return document("A", attachments=(pdf("1", kit.main_pdf("seal:A")),))


def _hub_states(world: World) -> list[str]:  # noqa: F811
    assert world.hub is not None
    return [d.state for d in world.hub.deliveries(recipient=B_ID)]


def _other_id(package: EdocPackage) -> EdocPackage:
    return dataclasses.replace(package, document_id=package.document_id.replace("123", "987"))


# How the attacker wraps A's genuine sealed main document anew (metadata forged around it).
FORGED: dict[str, Callable[[EdocPackage], EdocPackage]] = {
    "another DocumentId": _other_id,
    "another DocumentId and subject": lambda p: dataclasses.replace(
        _other_id(p), subject="Quyết định thu hồi đất"),
    "another DocumentId, also to C": lambda p: dataclasses.replace(
        _other_id(p), to=(*p.to, dataclasses.replace(p.to[0], organ_id=C_ID))),
    "another DocumentId, as a replacement": lambda p: dataclasses.replace(
        _other_id(p), business=Business(BusinessDocType.REPLACE, document_id=p.document_id)),
}


@pytest.mark.parametrize("forged", sorted(FORGED))
@pytest.mark.parametrize(
    ("xml", "reason"),
    [("placeholder", "seal_replayed"), ("personal:A", "seal_replayed"),
     ("unbound:A", "seal_replayed"), ("none", "signature_missing")],
)
def test_a_genuine_seal_in_forged_metadata_is_refused(
    world: World, b: Runtime, kit: Kit, forged: str, xml: str, reason: str,  # noqa: F811
) -> None:
    genuine = _genuine(kit)
    first = _list_for_b(world, b, packaged(kit, genuine, "placeholder"))
    assert first.inbound_state is _S.NOTIFIED
    second = _list_for_b(world, b, packaged(kit, FORGED[forged](genuine), xml))
    assert second.inbound_state is _S.REJECTION_NOTIFIED
    assert second.last_error is not None and second.last_error.reason == reason
    assert _hub_states(world) == ["done", "fail"]
    assert len(world.b.deliveries(kind=None)) == 1
    assert [n.status_code for n in status_notices(b)] == ["01"], "no 02 for a replay"


# The genuine package listed again, changed only where nothing vouches for it.
REPLAYED: dict[str, Callable[[bytes], bytes]] = {
    "stray bytes before <?xml": lambda raw: b"1212" + raw,
    "CRLF line endings": lambda raw: raw.replace(b"\n", b"\r\n"),
    "a trailing newline": lambda raw: raw + b"\n",
}


@pytest.mark.parametrize("replay", sorted(REPLAYED))
@pytest.mark.parametrize("xml", ["placeholder", "seal:A"])
def test_a_genuine_package_listed_again_is_delivered_once(
    world: World, b: Runtime, kit: Kit, replay: str, xml: str,  # noqa: F811
) -> None:
    raw = packaged(kit, _genuine(kit), xml)
    assert _list_for_b(world, b, raw).inbound_state is _S.NOTIFIED
    again = _list_for_b(world, b, REPLAYED[replay](raw))
    assert again.inbound_state is _S.REJECTION_NOTIFIED
    assert again.last_error is not None and again.last_error.reason == "document_repeated"
    assert len(world.b.deliveries(kind=None)) == 1
    assert [n.status_code for n in status_notices(b)] == ["01"]


def test_the_same_document_with_a_new_subject_is_delivered_once(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    genuine = _genuine(kit)
    assert _list_for_b(world, b, packaged(kit, genuine, "placeholder")).inbound_state is _S.NOTIFIED
    forged = dataclasses.replace(genuine, subject="V/v chuyển tiền gấp")
    again = _list_for_b(world, b, packaged(kit, forged, "placeholder"))
    assert again.last_error is not None and again.last_error.reason == "document_repeated"
    assert len(world.b.deliveries(kind=None)) == 1


@pytest.mark.parametrize(
    ("second", "xml"),
    [
        ("revoke of the same document", "placeholder"),
        ("update of the same document", "placeholder"),
        ("another DocumentId signed by A's seal", "seal:A"),
    ],
)
def test_what_the_sender_may_do_with_its_own_seal_is_delivered(
    world: World, b: Runtime, kit: Kit, second: str, xml: str,  # noqa: F811
) -> None:
    genuine = _genuine(kit)
    assert _list_for_b(world, b, packaged(kit, genuine, "placeholder")).inbound_state is _S.NOTIFIED
    follow = {
        "revoke of the same document": dataclasses.replace(
            genuine, business=Business(BusinessDocType.REVOKE, document_id=genuine.document_id)),
        "update of the same document": dataclasses.replace(
            genuine, business=Business(BusinessDocType.UPDATE, document_id=genuine.document_id)),
        "another DocumentId signed by A's seal": _other_id(genuine),
    }[second]
    package = _list_for_b(world, b, packaged(kit, follow, xml))
    assert package.inbound_state is _S.NOTIFIED, package.last_error
    assert len(world.b.deliveries(kind=None)) == 2


@pytest.mark.parametrize("document_id", ["the same DocumentId", "another DocumentId"])
def test_a_replayed_seal_establishes_no_one_for_a_02(
    world: World, b: Runtime, kit: Kit, document_id: str,  # noqa: F811
) -> None:
    """A's genuine seal around a broken annex would make B sign a 02 "from the established
    sender" for the DocumentId the replayer chose — e.g. one B accepted: A's tracking would
    show B rejecting a document B took. A seal B has seen before establishes no one."""
    genuine = _genuine(kit)
    assert _list_for_b(world, b, packaged(kit, genuine, "placeholder")).inbound_state is _S.NOTIFIED
    forged = dataclasses.replace(genuine, attachments=(
        *genuine.attachments, pdf("2", kit.annex_pdf("none"))))
    if document_id != "the same DocumentId":
        forged = _other_id(forged)
    refused = _list_for_b(world, b, packaged(kit, forged, "placeholder"))
    assert refused.last_error is not None
    assert refused.last_error.reason == "organisation_signature_missing"
    assert [n.status_code for n in status_notices(b)] == ["01"], "a 02 on a replayed seal"
    assert len(world.b.deliveries(kind=None)) == 1


def test_a_first_seen_seal_still_establishes_its_sender_for_a_02(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    broken = document("A", attachments=(pdf("1", kit.main_pdf("seal:A")),
                                        pdf("2", kit.annex_pdf("none"))))
    refused = _list_for_b(world, b, packaged(kit, broken, "placeholder"))
    assert refused.last_error is not None
    assert refused.last_error.reason == "organisation_signature_missing"
    assert [n.status_code for n in status_notices(b)] == ["02"]
