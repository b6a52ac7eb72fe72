"""Leases: those of a killed process are freed at the next start, not after they run out;
a lease taken over fences its first claimer (no send, no record of one)."""

from __future__ import annotations

import pytest

from connector.store.api import LeaseLost, NewOutbound, PackageFacts
from connector.store.states import OutboundState, PackageKind
from tests.store.conftest import FakeClock, Store


def _ready(store: Store, local_id: str) -> int:
    return store.add_outbound(
        NewOutbound(
            local_id=local_id,
            kind=PackageKind.EDOC,
            state=OutboundState.READY,
            raw=b"<edXML/>",
            facts=PackageFacts(document_id=local_id, sender="A", recipients=("B",)),
        )
    ).package.id


def test_stale_leases_are_released_for_the_new_process(store: Store) -> None:
    first, second = _ready(store, "1"), _ready(store, "2")
    claimed = store.claim("old-process", limit=2, lease_seconds=3600)
    assert {p.id for p in claimed} == {first, second}
    assert store.claim("new-process", limit=2) == []  # still leased to the dead process

    assert store.release_stale_leases("new-process") == 2
    assert {p.id for p in store.claim("new-process", limit=2)} == {first, second}
    assert store.release_stale_leases("new-process") == 0  # its own leases are kept


def test_a_lease_taken_over_fences_its_first_claimer(store: Store, clock: FakeClock) -> None:
    package_id = _ready(store, "1")
    (claimed,) = store.claim("first", lease_seconds=10)
    clock.advance(8)
    assert store.hold_lease(package_id, "first", lease_seconds=10)  # extended from now
    clock.advance(8)
    assert store.claim("second") == []  # the extension kept it
    clock.advance(3)
    (taken,) = store.claim("second", lease_seconds=10)  # ran out: taken over
    assert taken.id == claimed.id

    # The first claimer neither sends (its check before the hub call) nor records a send.
    assert not store.hold_lease(package_id, "first", lease_seconds=10)
    with pytest.raises(LeaseLost) as lost:
        store.mark_sent(package_id, "hub-1", owner="first")
    assert lost.value.holder == "second" and lost.value.reason == "lease_lost"
    assert store.get(package_id).state is OutboundState.READY
    assert [e.event for e in store.events(package_id)] == ["ready"]

    # The holder sends; the same success reported again changes nothing.
    assert store.hold_lease(package_id, "second", lease_seconds=10)
    sent = store.mark_sent(package_id, "hub-1", owner="second")
    assert sent.state is OutboundState.SENT and sent.lease_owner is None
    assert store.mark_sent(package_id, "hub-1", owner="second") == sent
    assert not store.hold_lease(package_id, "second", lease_seconds=10)  # settled: no lease
    with pytest.raises(LeaseLost):
        store.mark_sent(package_id, "hub-2", owner="first")  # another send is not recorded
