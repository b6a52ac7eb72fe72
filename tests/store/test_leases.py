"""Leases of a killed process are freed at the next start, not after they run out."""

from __future__ import annotations

from connector.store.api import NewOutbound, PackageFacts
from connector.store.states import OutboundState, PackageKind
from tests.store.conftest import Store


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
