"""Store fixtures: every test of the shared suite runs on SQLite and on PostgreSQL.

PostgreSQL tests get a fresh schema on ``CONNECTOR_TEST_PG_DSN`` (default: 127.0.0.1:5432,
user postgres, database test, trust auth) and are skipped, saying why, when no server
answers there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.conninfo import make_conninfo

from connector.store.postgres import PostgresStore
from connector.store.postgres_db import check_reachable
from connector.store.sqlite import SqliteStore

PG_DSN = os.environ.get(
    "CONNECTOR_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)

Store = SqliteStore | PostgresStore
StoreOpener = Callable[..., Store]


class FakeClock:
    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AesGcmTestCipher:
    """A real AEAD with AAD, standing in for connector.trust.atrest in these tests."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], aad)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cipher() -> AesGcmTestCipher:
    return AesGcmTestCipher()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "store.sqlite"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test database; commits are not flushed to disk (tests need no durability)."""
    why = check_reachable(PG_DSN, timeout=2)
    if why is not None:
        pytest.skip(f"PostgreSQL not reachable at '{PG_DSN}' (CONNECTOR_TEST_PG_DSN): {why}")
    return make_conninfo(PG_DSN, options="-c synchronous_commit=off")


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh, empty schema, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(
    backend: str, request: pytest.FixtureRequest, store_path: Path, clock: FakeClock
) -> Iterator[StoreOpener]:
    """Opens store instances on one database (a file, or a PostgreSQL schema): a second
    instance stands in for another process or replica. All are closed after the test."""
    opened: list[Store] = []
    if backend == "postgres":
        dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")

    def opener(cipher: Any, **options: Any) -> Store:
        options.setdefault("clock", clock)
        instance: Store
        if backend == "postgres":
            instance = PostgresStore(dsn, cipher, schema=schema, **options)
        else:
            instance = SqliteStore(store_path, cipher, **options)
        opened.append(instance)
        return instance

    yield opener
    for instance in opened:
        instance.close()


@pytest.fixture
def store(open_store: StoreOpener, cipher: AesGcmTestCipher) -> Store:
    return open_store(cipher)
