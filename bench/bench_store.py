"""Benchmark: the tracking store on SQLite and on PostgreSQL, and N replicas claiming.

Per standard document (10 KB record, 310 KB package, AES-GCM at rest as the daemon does):
the store's share of the outbound path (accept, ready, claim, sent) and of the inbound path
(received ... notified, with its 01 queued), in wall ms and transactions. Then 1, 2 and 3
replicas (one store instance and one sender thread each, as separate processes would) on one
PostgreSQL database claiming and settling a backlog. PostgreSQL at ``CONNECTOR_BENCH_PG_DSN``
(default 127.0.0.1:5432, user postgres, database test); skipped, saying why, when absent.
Prints tables; asserts nothing.

    .venv/bin/python -m bench.bench_store [--count N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.local.base import LocalRecord, RecordKind
from connector.store.api import NewInbound, NewOutbound, PackageFacts, TrackingStore
from connector.store.postgres import PostgresStore
from connector.store.postgres_db import check_reachable
from connector.store.sqlite import SqliteStore
from connector.store.states import InboundState, OutboundState, PackageKind

DSN = os.environ.get("CONNECTOR_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
RECORD, PACKAGE = os.urandom(10_000), os.urandom(310_000)
FACTS = PackageFacts(document_id="A,2025/07/01,12/SNV-VP", sender="A", recipients=("B", "C"))


class Cipher:
    """AES-256-GCM with AAD, as ``connector.trust.atrest`` seals payloads."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], aad)


def record(index: int) -> LocalRecord:
    return LocalRecord(f"rec-{index}", RECORD, "application/json", "qlvb-json", RecordKind.RECORD)


def outbound_path(store: TrackingStore, index: int) -> int:
    """The store's part of sending one document; returns its transactions."""
    package = store.add_outbound(
        NewOutbound(f"rec-{index}", PackageKind.EDOC, record=record(index))
    )
    store.mark_ready(package.package.id, PACKAGE, FACTS)
    (claimed,) = store.claim("bench")
    store.mark_sent(claimed.id, f"hub-{index}")
    return 4


def inbound_path(store: TrackingStore, index: int) -> int:
    """The store's part of receiving one document and queueing its 01."""
    facts = PackageFacts(document_id=f"B,{index}", sender="B", recipients=("A",))
    package = store.add_inbound(NewInbound(f"in-{index}", PackageKind.EDOC, PACKAGE, facts)).package
    for state in (InboundState.VERIFIED, InboundState.DELIVERED, InboundState.ACKNOWLEDGED):
        store.transition(package.id, state)
    notice = store.add_outbound(
        NewOutbound(
            f"notice-01:{package.id}",
            PackageKind.STATUS,
            OutboundState.READY,
            raw=b"<status 01/>" * 100,
            facts=PackageFacts(document_id=facts.document_id, sender="A", recipients=("B",)),
            related_id=package.id,
        )
    ).package
    store.transition(package.id, InboundState.NOTIFIED, related_id=notice.id)
    return 6


@contextmanager
def pg_schema() -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def per_document(open_store: Callable[[], TrackingStore], count: int) -> tuple[float, float]:
    store = open_store()
    try:
        rows = []
        for path in (outbound_path, inbound_path):
            started = time.perf_counter()
            for index in range(count):
                path(store, index)
            rows.append((time.perf_counter() - started) / count * 1000)
        return rows[0], rows[1]
    finally:
        store.close()


def replicas_claiming(replicas: int, count: int) -> float:
    """Documents per second settled (claim + sent) by ``replicas`` store instances."""
    with pg_schema() as schema:
        stores = [PostgresStore(DSN, Cipher(), schema=schema) for _ in range(replicas)]
        try:
            seeding = stores[0]
            for index in range(count):
                seeding.add_outbound(
                    NewOutbound(
                        f"r-{index}",
                        PackageKind.EDOC,
                        OutboundState.READY,
                        raw=b"<x/>",
                        facts=FACTS,
                    )
                )
            done = [0] * replicas

            def sender(number: int) -> None:
                store = stores[number]
                while batch := store.claim(f"replica-{number}", limit=4):
                    for package in batch:
                        store.mark_sent(package.id, f"hub-{package.id}")
                        done[number] += 1

            threads = [threading.Thread(target=sender, args=(n,)) for n in range(replicas)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            assert sum(done) == count, done
            return count / elapsed
        finally:
            for store in stores:
                store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    why = check_reachable(DSN, timeout=2)
    print(f"{'store':<12} {'outbound ms/doc':>16} {'inbound ms/doc':>15} {'tx/doc':>7}")
    with tempfile.TemporaryDirectory() as folder:
        sqlite = per_document(lambda: SqliteStore(Path(folder) / "s.sqlite", Cipher()), args.count)
        print(f"{'sqlite':<12} {sqlite[0]:>16.2f} {sqlite[1]:>15.2f} {'4 + 6':>7}")
    if why is not None:
        print(f"(PostgreSQL skipped: not reachable at '{DSN}': {why})")
        return
    with pg_schema() as schema:
        postgres = per_document(lambda: PostgresStore(DSN, Cipher(), schema=schema), args.count)
        print(f"{'postgres':<12} {postgres[0]:>16.2f} {postgres[1]:>15.2f} {'4 + 6':>7}")
    print(f"\n{'replicas':<10} {'docs/s claimed + sent':>22}  (PostgreSQL, {args.count * 4} docs)")
    for replicas in (1, 2, 3):
        print(f"{replicas:<10} {replicas_claiming(replicas, args.count * 4):>22.0f}")


if __name__ == "__main__":
    main()
