"""The inbound seal index on both backends: the first use of a seal wins, per receiver, across
store instances (replicas), and an older SQLite file gains the table on opening."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from connector.store.api import NewInbound, PackageFacts, SealUse
from connector.store.schema import SCHEMA_VERSION
from connector.store.sqlite import SqliteStore
from connector.store.states import PackageKind
from tests.store.conftest import AesGcmTestCipher, Store, StoreOpener

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"
DIGEST = "sha256:" + "ab" * 32


def inbound(store: Store, hub_id: str) -> int:
    facts = PackageFacts(document_id=f"{A},2025/07/01,{hub_id}", sender=A)
    return store.add_inbound(NewInbound(hub_id, PackageKind.EDOC, hub_id.encode(), facts)).package.id


def test_the_first_use_of_a_seal_is_kept_per_receiver(store: Store) -> None:
    first, second = inbound(store, "h1"), inbound(store, "h2")
    use = SealUse(B, DIGEST, A, "doc-1", first)
    assert store.remember_seal(use) == use
    assert store.remember_seal(use) == use  # the same package again: idempotent
    later = store.remember_seal(SealUse(B, DIGEST, C, "doc-2", second))
    assert later == use  # the first use, not the claim
    # Another of our organisations: the same document is its own first use ...
    same_document = SealUse(C, DIGEST, A, "doc-1", second)
    assert store.remember_seal(same_document) == same_document
    # ... but the seal under another DocumentId answers with the first use anywhere.
    assert store.remember_seal(SealUse("000.00.34.H12", DIGEST, A, "doc-9", second)) == use


def test_first_seal_use_reads_without_recording(store: Store) -> None:
    assert store.first_seal_use(DIGEST) is None
    assert store.first_seal_use(DIGEST) is None  # asking records nothing
    use = SealUse(B, DIGEST, A, "doc-1", inbound(store, "h1"))
    store.remember_seal(use)
    assert store.first_seal_use(DIGEST) == use


def test_two_instances_racing_agree_on_one_first_use(
    open_store: StoreOpener, cipher: AesGcmTestCipher
) -> None:
    one, two = open_store(cipher), open_store(cipher)
    ids = [inbound(one, "h1"), inbound(one, "h2")]
    results: list[SealUse] = []

    def claim(store: Store, package_id: int) -> None:
        results.append(store.remember_seal(SealUse(B, DIGEST, A, f"doc-{package_id}", package_id)))

    threads = [threading.Thread(target=claim, args=(s, i)) for s, i in zip((one, two), ids, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1]


def test_a_version_1_sqlite_file_gains_the_seal_index(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    SqliteStore(path, AesGcmTestCipher()).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE seals")
        conn.execute("PRAGMA user_version = 1")
    store = SqliteStore(path, AesGcmTestCipher())
    try:
        package_id = inbound(store, "h1")
        use = SealUse(B, DIGEST, A, "doc-1", package_id)
        assert store.remember_seal(use) == use
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
