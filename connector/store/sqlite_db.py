"""SQLite plumbing of the tracking store: connections, transactions, schema version.

One connection per thread (WAL lets readers run beside the single writer); every write is
one ``BEGIN IMMEDIATE`` transaction. ``synchronous=FULL``: a commit survives a power cut,
because the local side is acknowledged right after it. Database failures become
``UnavailableError``. The primitives every operation is built from are shared with the
PostgreSQL store in ``connector.store.sql_base``. This module must not decide what happens
to a package next.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from connector.errors import ConfigurationError, UnavailableError
from connector.store.api import PayloadCipher
from connector.store.schema import DDL, SCHEMA_VERSION
from connector.store.sql_base import DbConn, SqlDatabase, when_text

__all__ = ["SqliteDatabase", "when_text"]


class SqliteDatabase(SqlDatabase):
    """Connections and transactions on a SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        cipher: PayloadCipher | None,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._cipher = cipher
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._setup()

    def _setup(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the folder of the store {self.path}: {exc.strerror}",
                reason="store_path",
            ) from None
        created = not self.path.exists()
        with self._guard("open"):
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the store {self.path} has schema version {version}, newer than this "
                    f"connector's {SCHEMA_VERSION}: upgrade the connector",
                    reason="store_version",
                )
            if version < SCHEMA_VERSION:
                conn.executescript(DDL)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if created:
            os.chmod(self.path, 0o600)

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise UnavailableError(f"the store {self.path} is closed", reason="store_unavailable")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise ConfigurationError(
                    f"{self.path} is not a usable SQLite database: {exc}", reason="store_corrupt"
                ) from None
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Database failures become ``UnavailableError`` naming the store and the operation."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise UnavailableError(
                f"tracking store {self.path}: {what} failed: {exc}", reason="store_unavailable"
            ) from exc
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise UnavailableError(
                f"tracking store {self.path}: {what} failed: {exc}", reason="store_unavailable"
            ) from exc

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._guard(what):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def describe(self) -> str:
        return str(self.path)

    def _insert_id(self, conn: DbConn, sql: str, params: Sequence[object]) -> int:
        cursor = conn.execute(sql, params)
        return int(getattr(cursor, "lastrowid", 0) or 0)
