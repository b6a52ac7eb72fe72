"""Forged and misdirected statuses against B's real tracking (no stand-in for apply_incoming).

B sent document D to A and document E to C. Statuses arrive over a compromised hub: from the
right and the wrong agency, about D, E or a document B never sent, signed by the reporter's
seal or not at all. Only a bound status from a recipient of that very document moves that
recipient's state; nobody else's state moves, nothing is answered, and B goes on polling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.edxml.model import ResponseFor, StatusCode
from connector.store.api import NewOutbound, PackageFacts
from connector.store.states import OutboundState, PackageKind, RecipientState
from connector.trust.pki import DemoPki
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.edxml.factories import status
from tests.hostile.trust_kit import (
    A_ID,
    B_ID,
    C_ID,
    Kit,
    list_for_b,
    org,
    packaged,
    three_agency_pki,
)

D, E, NEVER = f"{B_ID},2026/11/20,7/STC-VP", f"{B_ID},2026/11/20,8/STC-VP", f"{B_ID},2026/11/20,9/X"


@pytest.fixture(scope="module")
def daemon_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def kit(daemon_pki: DemoPki) -> Kit:
    return Kit(daemon_pki)


@pytest.fixture
def b(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.b)
    store = built.services.store
    for local_id, document_id, recipient in (("d", D, A_ID), ("e", E, C_ID)):
        facts = PackageFacts(document_id=document_id, sender=B_ID, recipients=(recipient,))
        added = store.add_outbound(NewOutbound(local_id, PackageKind.EDOC, OutboundState.READY,
                                               raw=b"<edXML/>", facts=facts))
        store.mark_sent(added.package.id, f"hub-{local_id}")
    yield built
    built.close()


def _states(b: Runtime) -> dict[str, tuple[str, str | None]]:
    store = b.services.store
    found = {}
    for document_id in (D, E):
        (package,) = store.find_outbound_documents(document_id)
        for recipient in store.recipients(package.id):
            found[f"{document_id[-8:]}@{recipient.organ_id}"] = (
                recipient.state.value, recipient.status_code)
    return found


def _send(world: World, b: Runtime, kit: Kit, code: StatusCode, from_: str,  # noqa: F811
          about: str, signer: str, response_organ: str = B_ID) -> None:
    base = status(code)
    forged = dataclasses.replace(base, from_=org(from_), response_for=ResponseFor(
        response_organ, base.response_for.code, about, base.response_for.promulgation_date))
    raw = packaged(kit, forged, signer)
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1


CODES = tuple(StatusCode)  # 01-06, 13, 15, 16


@pytest.mark.parametrize(
    ("from_", "about", "signer", "response_organ"),
    [
        ("C", D, "seal:C", B_ID),  # C reports on a document B never sent it
        ("A", E, "seal:A", B_ID),  # A reports on C's document
        ("A", NEVER, "seal:A", B_ID),  # a document B never sent
        ("A", D, "placeholder", B_ID),  # the right reporter, unsigned
        ("A", D, "seal:C", B_ID),  # the right reporter, C's seal
        ("A", D, "personal:A", B_ID),  # a personal certificate
        ("C", D, "seal:C", A_ID),  # ResponseFor/OrganId pointing at another agency
    ],
)
def test_no_forged_status_moves_anyones_tracking(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
    from_: str, about: str, signer: str, response_organ: str,
) -> None:
    before = _states(b)
    for code in CODES:  # every code, one after another, on the same tracking
        _send(world, b, kit, code, from_, about, signer, response_organ)
        assert _states(b) == before, code
    assert status_notices(b) == []
    assert inbound.poll_once(b.services) == 0


def test_the_recipients_own_bound_status_moves_only_its_state(
    world: World, b: Runtime, kit: Kit,  # noqa: F811
) -> None:
    before = _states(b)
    _send(world, b, kit, StatusCode.ASSIGNED, "A", D, "seal:A")
    after = _states(b)
    assert after[f"{D[-8:]}@{A_ID}"][1] == "04"
    assert after[f"{D[-8:]}@{A_ID}"][0] != before[f"{D[-8:]}@{A_ID}"][0]
    assert after[f"{E[-8:]}@{C_ID}"] == before[f"{E[-8:]}@{C_ID}"]
    assert RecipientState(after[f"{D[-8:]}@{A_ID}"][0])
