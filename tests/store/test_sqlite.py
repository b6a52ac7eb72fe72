"""What only the SQLite store has: a file (sealed payloads on disk, append-only triggers seen
through another connection, a busy lock, a file that is not a database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from connector.errors import ConfigurationError, UnavailableError
from connector.store.api import (
    AddOutcome,
    NewInbound,
    NewOutbound,
    PackageFacts,
    PlaintextCipherForTests,
)
from connector.store.sqlite import SqliteStore
from connector.store.states import OutboundState, PackageKind
from tests.store.conftest import AesGcmTestCipher, FakeClock

EDOC = PackageKind.EDOC


@pytest.fixture
def store(store_path: Path, cipher: AesGcmTestCipher, clock: FakeClock) -> Iterator[SqliteStore]:
    instance = SqliteStore(store_path, cipher, clock=clock)
    yield instance
    instance.close()


def ready(store: SqliteStore, local_id: str, raw: bytes = b"<edXML/>") -> int:
    facts = PackageFacts(document_id=local_id, sender="A", recipients=("B",))
    added = store.add_outbound(
        NewOutbound(local_id, EDOC, OutboundState.READY, raw=raw, facts=facts)
    )
    return added.package.id


def test_payloads_are_sealed_and_bound_to_their_package(
    store: SqliteStore, store_path: Path, cipher: AesGcmTestCipher
) -> None:
    secret_words = b"CONTENT-THAT-MUST-NOT-BE-READABLE-ON-DISK"
    package_id = ready(store, "rec-1", raw=secret_words)
    other_id = ready(store, "rec-2", raw=b"other")
    inbound = store.add_inbound(NewInbound("hub-1", EDOC, secret_words + b"-in")).package
    store.close()
    for name in ("store.sqlite", "store.sqlite-wal"):
        path = store_path.parent / name
        if path.exists():
            assert secret_words not in path.read_bytes()

    with sqlite3.connect(store_path) as db:  # move one sealed blob onto another package
        db.execute(
            "UPDATE payloads SET sealed = (SELECT sealed FROM payloads WHERE package_id = ?) "
            "WHERE package_id = ?",
            (package_id, other_id),
        )
    reopened = SqliteStore(store_path, cipher)
    assert reopened.raw(package_id) == secret_words
    assert reopened.raw(inbound.id) == secret_words + b"-in"
    with pytest.raises(InvalidTag):
        reopened.raw(other_id)
    reopened.close()


def test_the_event_log_is_append_only(store: SqliteStore, store_path: Path) -> None:
    ready(store, "rec-1")
    with sqlite3.connect(store_path) as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE events SET detail = 'rewritten'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM events")


def test_a_locked_database_is_unavailable_not_a_message_failure(store_path: Path) -> None:
    store = SqliteStore(store_path, PlaintextCipherForTests(), busy_timeout=0.05)
    blocker = sqlite3.connect(store_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(UnavailableError) as caught:
            store.add_outbound(NewOutbound("rec-1", EDOC))
        assert caught.value.reason == "store_unavailable"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.add_outbound(NewOutbound("rec-1", EDOC)).outcome is AddOutcome.CREATED
    store.close()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises((ConfigurationError, UnavailableError)):
        SqliteStore(path, None)
