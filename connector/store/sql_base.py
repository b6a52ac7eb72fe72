"""What the SQLite and PostgreSQL tracking stores share: the primitives every operation uses.

A subclass supplies connections (``_conn`` for reads, ``_write`` for one transaction),
``_guard`` (database failures → ``UnavailableError``) and the few dialect hooks below; the
SQL here is written once, with ``?`` placeholders, in the subset both databases accept.
``_move`` is the one place a package row changes state, checked against the table in
``connector.store.states`` and logged with its event in the same transaction. Payloads are
sealed by the ``PayloadCipher`` before they are written, bound (as AAD) to their package and
part. This module must not open databases nor decide what happens to a package next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from connector.errors import ConfigurationError
from connector.store.api import (
    ErrorInfo,
    PackageFacts,
    PayloadCipher,
    TrackedPackage,
    UnknownPackage,
)
from connector.store.schema import PACKAGE_COLUMNS, package_from_row
from connector.store.states import Direction, PackageState, RecipientState, check_transition
from connector.timeutil import VN_TZ, format_timestamp


def when_text(seconds: float) -> str:
    """A stored time as Vietnam wall-clock text."""
    return format_timestamp(dt.datetime.fromtimestamp(seconds, VN_TZ))


class DbCursor(Protocol):
    """The part of a DB-API cursor the store uses (rows allow ``row["name"]`` and ``row[0]``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class DbConn(Protocol):
    """The part of a connection the store uses; ``sqlite3.Connection`` is one."""

    def execute(self, sql: str, parameters: Any = ..., /) -> DbCursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> DbCursor: ...


class SqlDatabase:
    """Transactions, payload sealing and the state-changing primitives, for either database."""

    _cipher: PayloadCipher | None
    _clock: Callable[[], float]
    # Appended to the SELECTs of a write that go on to change the rows they read. SQLite
    # serialises writers already (BEGIN IMMEDIATE); PostgreSQL locks the rows.
    _row_lock = ""
    # Appended to the claim's SELECT: PostgreSQL replicas skip what another is claiming.
    _skip_locked = ""

    def describe(self) -> str:
        """The store as named in messages (a file, or a database without its password)."""
        raise NotImplementedError

    # -- supplied by the database --------------------------------------------------------
    def _conn(self) -> DbConn:
        raise NotImplementedError

    def _guard(self, what: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _write(self, what: str) -> AbstractContextManager[DbConn]:
        raise NotImplementedError

    def _insert_id(self, conn: DbConn, sql: str, params: Sequence[object]) -> int:
        """Runs an ``INSERT`` and returns the new row's id."""
        raise NotImplementedError

    def _serialize_key(self, conn: DbConn, key: str) -> None:
        """Makes concurrent writers of the same idempotency key wait for each other."""

    def _lease_free(self, now: float) -> tuple[str, list[object]]:
        """The SQL condition (and its parameters) under which a package's lease is free."""
        return "(lease_until IS NULL OR lease_until <= ?)", [now]

    def _lease_columns(self) -> dict[str, object]:
        """Columns a claim sets besides the owner and the time (PostgreSQL: the instance)."""
        return {}

    def _vouched_lease_columns(self) -> dict[str, object]:
        """``_lease_columns`` after making sure what vouches for a lease is alive (fencing)."""
        return self._lease_columns()

    def close(self) -> None:
        raise NotImplementedError

    # -- shared primitives ---------------------------------------------------------------
    def _load(self, conn: DbConn, package_id: int) -> TrackedPackage:
        row = conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = ?", (package_id,)
        ).fetchone()
        if row is None:
            raise UnknownPackage(package_id)
        return package_from_row(row)

    def _locked(self, conn: DbConn, package_id: int) -> TrackedPackage:
        """The package, read inside a write that is about to change it."""
        row = conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE id = ?{self._row_lock}", (package_id,)
        ).fetchone()
        if row is None:
            raise UnknownPackage(package_id)
        return package_from_row(row)

    def _event(
        self, conn: DbConn, package_id: int, event: str, state: str | None, detail: str
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
                f"the store {self.describe()} was opened without an at-rest key: payloads "
                "cannot be written or read",
                reason="store_no_key",
            )
        return self._cipher

    def _put_payload(
        self,
        conn: DbConn,
        package: TrackedPackage,
        part: str,
        data: bytes,
        meta: dict[str, object] | None = None,
    ) -> None:
        sealed = self._require_cipher().seal(
            data, aad=self._aad(package.direction, package.key, part)
        )
        conn.execute(
            "INSERT INTO payloads (package_id, part, size, sha256, meta, sealed) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (package_id, part) DO UPDATE SET "
            "size = excluded.size, sha256 = excluded.sha256, meta = excluded.meta, "
            "sealed = excluded.sealed",
            (
                package.id,
                part,
                len(data),
                hashlib.sha256(data).hexdigest(),
                json.dumps(meta or {}, ensure_ascii=False),
                sealed,
            ),
        )

    def _has_payload(self, conn: DbConn, package_id: int, part: str) -> bool:
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

    def _add_recipients(self, conn: DbConn, package_id: int, recipients: Sequence[str]) -> None:
        now = self._clock()
        rows = [(package_id, organ, RecipientState.PENDING.value, now) for organ in recipients]
        if rows:
            conn.executemany(
                "INSERT INTO recipients (package_id, organ_id, state, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (package_id, organ_id) DO NOTHING",
                rows,
            )

    def _move(
        self,
        conn: DbConn,
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
