"""The operator's reads on both backends (SQLite and PostgreSQL): find a package by any of
its identifiers, list recipients stuck in a state, and the recipient backlog gauge."""

from __future__ import annotations

from connector.store.api import NewInbound, NewOutbound, PackageFacts, PackageFilter
from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from tests.store.conftest import FakeClock, Store

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"


def sent(store: Store, local_id: str, code: str, hub_id: str) -> int:
    facts = PackageFacts(
        document_id=f"{A},2025/07/01,{code}", sender=A, recipients=(B, C), code=code
    )
    new = NewOutbound(local_id, PackageKind.EDOC, OutboundState.READY, raw=b"<edXML/>", facts=facts)
    package_id = store.add_outbound(new).package.id
    store.mark_sent(package_id, hub_id)
    return package_id


def test_search_by_every_identifier(store: Store) -> None:
    first = sent(store, "rec-12", "12/QĐ-UBND", "hub-a")
    second = sent(store, "rec-13", "13/QĐ-UBND", "hub-b")
    received = store.add_inbound(
        NewInbound("hub-in", PackageKind.EDOC, b"<edXML/>",
                   PackageFacts(document_id=f"{B},2025/07/02,5/STC", sender=B, code="5/STC"))
    ).package.id
    assert [p.id for p in store.search(f"{A},2025/07/01,12/QĐ-UBND")] == [first]
    assert [p.id for p in store.search("rec-13")] == [second]
    assert [p.id for p in store.search("hub-b")] == [second]
    assert [p.id for p in store.search("hub-in")] == [received]
    assert [p.id for p in store.search("QĐ-UBND")] == [second, first]  # newest first
    assert store.search("100%") == [] and store.search("_") == []  # no wildcards
    assert store.search("  ") == []


def test_recipients_stuck_in_a_state_and_the_backlog(store: Store, clock: FakeClock) -> None:
    old = sent(store, "rec-old", "1/A", "hub-1")
    clock.advance(5 * 3600)
    new = sent(store, "rec-new", "2/A", "hub-2")
    store.apply_status(old, B, "01")  # B confirmed arrival now; C never did
    stuck = PackageFilter(
        direction=Direction.OUTBOUND,
        recipient_state=RecipientState.SENT,
        unchanged_since=clock() - 4 * 3600,
    )
    assert [p.id for p in store.find_matching(stuck)] == [old]
    assert [p.id for p in store.find_matching(PackageFilter(recipient_state=RecipientState.SENT))] == [old, new]
    for organ, expected in ((C, [old]), (B, [])):
        where = PackageFilter(
            recipient_state=RecipientState.SENT, organ_id=organ, unchanged_since=clock() - 3600
        )
        assert [p.id for p in store.find_matching(where)] == expected
    assert {p.id for p in store.find_matching(PackageFilter(organ_id=B))} == {old, new}
    backlog = {b.state: b for b in store.recipient_backlog()}
    assert backlog[RecipientState.SENT].count == 3
    assert clock() - backlog[RecipientState.SENT].oldest_since == 5 * 3600
    assert backlog[RecipientState.ARRIVED].count == 1


def test_search_finds_a_received_document_by_its_number(store: Store) -> None:
    # The receiving pipeline stores no CodeNumber/Notation of its own; the number is part of
    # the DocumentId (OrganId,date,number), so `messages find 5/STC` must still find it.
    received = store.add_inbound(
        NewInbound("hub-in-2", PackageKind.EDOC, b"<edXML/>",
                   PackageFacts(document_id=f"{B},2025/07/02,5/STC-VP", sender=B))
    ).package.id
    assert [p.id for p in store.search("5/STC")] == [received]
    assert store.search("5/STC%") == []
