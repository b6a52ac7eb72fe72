"""SQLite plumbing of the tracking store: connections, transactions, payload sealing.

One connection per thread (WAL lets readers run beside the single writer); every write is
one ``BEGIN IMMEDIATE`` transaction, and ``_move`` is the one place a package row changes
state, checked against the table in ``connector.store.states`` and logged with its event in
the same transaction. ``synchronous=FULL``: a commit survives a power cut, because the local
side is acknowledged right after it. Payloads are sealed by the ``PayloadCipher`` before
they are written, bound (as AAD) to their package and part. Database failures become
``UnavailableError``. This module must not decide what happens to a package next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from connector.errors import ConfigurationError, UnavailableError
from connector.store.api import (
    ErrorInfo,
    PackageFacts,
    PayloadCipher,
    TrackedPackage,
    UnknownPackage,
)
from connector.store.schema import (
    DDL,
    PACKAGE_COLUMNS,
    SCHEMA_VERSION,
    package_from_row,
)
from connector.store.states import (
    Direction,
    InboundState,
    OutboundState,
    PackageState,
    RecipientState,
    check_transition,
)
from connector.timeutil import VN_TZ, format_timestamp

_O, _I = OutboundState, InboundState


def when_text(seconds: float) -> str:
    """A stored time as Vietnam wall-clock text."""
    return format_timestamp(dt.datetime.fromtimestamp(seconds, VN_TZ))


class SqliteDatabase:
    """Connections, transactions and the primitives every store operation is built from."""

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

    def _load(self, conn: sqlite3.Connection, package_id: int) -> TrackedPackage:
        row = conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = ?", (package_id,)
        ).fetchone()
        if row is None:
            raise UnknownPackage(package_id)
        return package_from_row(row)

    def _event(
        self, conn: sqlite3.Connection, package_id: int, event: str, state: str | None, detail: str
    ) -> None:
        conn.execute(
            "INSERT INTO events (package_id, at, event, state, detail) VALUES (?, ?, ?, ?, ?)",
            (package_id, self._clock(), event, state, detail),
        )

    def _aad(self, direction: Direction, key: str, part: str) -> bytes:
        return f"edoc-connector/store/v1/{direction.value}/{part}/{key}".encode()

    def _require_cipher(self) -> PayloadCipher:
        if self._cipher is None:
            raise ConfigurationError(
                f"the store {self.path} was opened without an at-rest key: payloads cannot be "
                "written or read",
                reason="store_no_key",
            )
        return self._cipher

    def _put_payload(
        self,
        conn: sqlite3.Connection,
        package: TrackedPackage,
        part: str,
        data: bytes,
        meta: dict[str, object] | None = None,
    ) -> None:
        sealed = self._require_cipher().seal(
            data, aad=self._aad(package.direction, package.key, part)
        )
        conn.execute(
            "INSERT OR REPLACE INTO payloads (package_id, part, size, sha256, meta, sealed) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                package.id,
                part,
                len(data),
                hashlib.sha256(data).hexdigest(),
                json.dumps(meta or {}, ensure_ascii=False),
                sealed,
            ),
        )

    def _has_payload(self, conn: sqlite3.Connection, package_id: int, part: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM payloads WHERE package_id = ? AND part = ?", (package_id, part)
        ).fetchone()
        return row is not None

    def _facts_columns(self, facts: PackageFacts) -> dict[str, object]:
        return {
            "document_id": facts.document_id,
            "sender": facts.sender,
            "priority": min(max(facts.priority, 0), 3),
            "code": facts.code,
            "status_code": facts.status_code,
            "deadline_at": facts.deadline_at,
        }

    def _add_recipients(
        self, conn: sqlite3.Connection, package_id: int, recipients: Sequence[str]
    ) -> None:
        now = self._clock()
        conn.executemany(
            "INSERT OR IGNORE INTO recipients (package_id, organ_id, state, updated_at) "
            "VALUES (?, ?, ?, ?)",
            [(package_id, organ, RecipientState.PENDING.value, now) for organ in recipients],
        )

    def _move(
        self,
        conn: sqlite3.Connection,
        package: TrackedPackage,
        target: PackageState,
        event: str,
        detail: str,
        *,
        error: ErrorInfo | None = None,
        clear_error: bool = False,
        columns: dict[str, object] | None = None,
    ) -> TrackedPackage:
        """The one place a package row changes state: checked, leased out, with its event."""
        check_transition(
            package.direction, package.kind, package.state, target, package=f"#{package.id}"
        )
        sets: dict[str, object] = {
            "state": target.value,
            "updated_at": self._clock(),
            "lease_owner": None,
            "lease_until": None,
            **(columns or {}),
        }
        if error is not None:
            sets.update(
                error_reason=error.reason, error_message=error.message, error_stage=error.stage
            )
        elif clear_error:
            sets.update(error_reason=None, error_message=None, error_stage=None)
        assignments = ", ".join(f"{name} = ?" for name in sets)
        conn.execute(
            f"UPDATE packages SET {assignments} WHERE id = ? AND state = ?",
            (*sets.values(), package.id, package.state.value),
        )
        self._event(conn, package.id, event, target.value, detail)
        return self._load(conn, package.id)
