"""Read queries of the tracking store: lookups, resume lists, payloads, metrics.

The SQL is common to SQLite and PostgreSQL (``connector.store.postgres`` reuses it).

Reads run outside write transactions on the thread's connection and see the last committed
state (WAL snapshot). This module must not change anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from connector.local.base import LocalRecord, RecordKind
from connector.store.api import (
    RECIPIENT_WAITING_STATES,
    Event,
    PackageFilter,
    Recipient,
    RecipientBacklog,
    StateCount,
    TrackedPackage,
)
from connector.store.schema import (
    PACKAGE_COLUMNS,
    event_from_row,
    package_from_row,
    recipient_from_row,
)
from connector.store.sql_base import SqlDatabase
from connector.store.states import (
    OUTBOX_STATES,
    Direction,
    PackageKind,
    PackageState,
    RecipientState,
    parse_state,
    resumable_states,
)


class StoreReads(SqlDatabase):
    """The read side of the SQLite and PostgreSQL stores (the SQL is common to both)."""

    def find_outbound_documents(
        self, document_id: str, recipient: str | None = None
    ) -> list[TrackedPackage]:
        """Outbound documents with this DocumentId (sent to ``recipient``), newest first."""
        sql = (
            f"SELECT {PACKAGE_COLUMNS} FROM packages p WHERE direction = 'out' "
            "AND kind = 'edoc' AND document_id = ?"
        )
        params: list[object] = [document_id]
        if recipient is not None:
            sql += (
                " AND EXISTS (SELECT 1 FROM recipients r WHERE r.package_id = p.id "
                "AND r.organ_id = ?)"
            )
            params.append(recipient)
        with self._guard("find outbound documents"):
            rows = self._conn().execute(sql + " ORDER BY created_at DESC, id DESC", params)
            return [package_from_row(r) for r in rows.fetchall()]

    def find_inbound_by_hub_id(self, hub_id: str) -> TrackedPackage | None:
        with self._guard("find inbound package"):
            row = (
                self._conn()
                .execute(
                    f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE direction = 'in' AND hub_id = ? "
                    "ORDER BY id LIMIT 1",
                    (hub_id,),
                )
                .fetchone()
            )
        return package_from_row(row) if row is not None else None

    def get(self, package_id: int) -> TrackedPackage:
        with self._guard("read package"):
            return self._load(self._conn(), package_id)

    def find(
        self,
        *,
        direction: Direction | None = None,
        states: Sequence[PackageState] = (),
        limit: int = 100,
    ) -> list[TrackedPackage]:
        """Packages, newest first, optionally of one direction and some states."""
        clauses: list[str] = []
        params: list[object] = []
        if direction is not None:
            clauses.append("direction = ?")
            params.append(direction.value)
        if states:
            clauses.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._guard("list packages"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {PACKAGE_COLUMNS} FROM packages {where} ORDER BY id DESC LIMIT ?",
                    (*params, limit),
                )
                .fetchall()
            )
        return [package_from_row(r) for r in rows]

    def search(self, text: str, *, limit: int = 50) -> list[TrackedPackage]:
        """DocumentId, record id (key) or hub id equal to ``text``, or CodeNumber/Notation (or
        DocumentId) containing it; newest first."""
        text = text.strip()
        if not text:
            return []
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._guard("search packages"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE document_id = ? "
                    "OR idem_key = ? OR hub_id = ? OR code LIKE ? ESCAPE '\\' "
                    # received packages carry no code of their own: their number is the
                    # DocumentId's last part (OrganId,date,number)
                    "OR document_id LIKE ? ESCAPE '\\' "
                    "ORDER BY id DESC LIMIT ?",
                    (text, text, text, pattern, pattern, limit),
                )
                .fetchall()
            )
        return [package_from_row(r) for r in rows]

    def find_matching(self, where: PackageFilter, *, limit: int = 100) -> list[TrackedPackage]:
        """Packages matching every criterion, the longest unchanged first."""
        clauses: list[str] = []
        params: list[object] = []
        if where.direction is not None:
            clauses.append("p.direction = ?")
            params.append(where.direction.value)
        if where.states:
            clauses.append(f"p.state IN ({', '.join('?' for _ in where.states)})")
            params.extend(s.value for s in where.states)
        recipient: list[str] = []
        if where.recipient_state is not None:
            recipient.append("r.state = ?")
            params.append(where.recipient_state.value)
        if where.organ_id is not None and where.recipient_state is not None:
            recipient.append("r.organ_id = ?")
            params.append(where.organ_id)
        if where.unchanged_since is not None and where.recipient_state is not None:
            recipient.append("r.updated_at <= ?")
            params.append(where.unchanged_since)
        if recipient:
            clauses.append(
                "EXISTS (SELECT 1 FROM recipients r WHERE r.package_id = p.id AND "
                + " AND ".join(recipient) + ")"
            )
        elif where.organ_id is not None:
            clauses.append(
                "(p.sender = ? OR EXISTS (SELECT 1 FROM recipients r WHERE "
                "r.package_id = p.id AND r.organ_id = ?))"
            )
            params.extend([where.organ_id, where.organ_id])
        if where.unchanged_since is not None and where.recipient_state is None:
            clauses.append("p.updated_at <= ?")
            params.append(where.unchanged_since)
        sql_where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._guard("list packages"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {PACKAGE_COLUMNS} FROM packages p {sql_where} "
                    "ORDER BY p.updated_at, p.id LIMIT ?",
                    (*params, limit),
                )
                .fetchall()
            )
        return [package_from_row(r) for r in rows]

    def recipient_backlog(self) -> list[RecipientBacklog]:
        """Recipients of outbound documents per waiting state: count and oldest change."""
        states = [s.value for s in RECIPIENT_WAITING_STATES]
        with self._guard("recipient backlog"):
            rows = (
                self._conn()
                .execute(
                    "SELECT r.state, COUNT(*), MIN(r.updated_at) FROM recipients r "
                    "JOIN packages p ON p.id = r.package_id WHERE p.direction = 'out' "
                    f"AND r.state IN ({', '.join('?' for _ in states)}) GROUP BY r.state",
                    states,
                )
                .fetchall()
            )
        return [RecipientBacklog(RecipientState(r[0]), int(r[1]), float(r[2])) for r in rows]

    def to_resume(self, direction: Direction, *, limit: int = 100) -> list[TrackedPackage]:
        """Packages the daemon must carry on with (e.g. RECEIVED but not DELIVERED), urgent
        first. Leases and ``next_attempt_at`` are not considered: this is the restart view."""
        clauses: list[str] = []
        params: list[str] = []
        for kind in PackageKind:
            states = sorted(s.value for s in resumable_states(direction, kind))
            clauses.append(f"(kind = ? AND state IN ({', '.join('?' for _ in states)}))")
            params.extend([kind.value, *states])
        with self._guard("find packages to resume"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE direction = ? AND "
                    f"({' OR '.join(clauses)}) ORDER BY priority DESC, created_at, id LIMIT ?",
                    (direction.value, *params, limit),
                )
                .fetchall()
            )
        return [package_from_row(r) for r in rows]

    def events(self, package_id: int) -> list[Event]:
        with self._guard("read events"):
            rows = (
                self._conn()
                .execute(
                    "SELECT at, event, state, detail FROM events WHERE package_id = ? ORDER BY id",
                    (package_id,),
                )
                .fetchall()
            )
        return [event_from_row(r) for r in rows]

    def recipients(self, package_id: int) -> list[Recipient]:
        with self._guard("read recipients"):
            rows = (
                self._conn()
                .execute(
                    "SELECT * FROM recipients WHERE package_id = ? ORDER BY organ_id", (package_id,)
                )
                .fetchall()
            )
        return [recipient_from_row(r) for r in rows]

    def _payload(self, package_id: int, part: str) -> tuple[TrackedPackage, bytes, str] | None:
        with self._guard("read payload"):
            conn = self._conn()
            package = self._load(conn, package_id)
            row = conn.execute(
                "SELECT sealed, meta FROM payloads WHERE package_id = ? AND part = ?",
                (package_id, part),
            ).fetchone()
        if row is None:
            return None
        cipher = self._require_cipher()
        data = cipher.open(
            bytes(row["sealed"]), aad=self._aad(package.direction, package.key, part)
        )
        return package, data, row["meta"]

    def raw(self, package_id: int) -> bytes | None:
        """The package exactly as sent or received (R11), decrypted."""
        found = self._payload(package_id, "raw")
        return found[1] if found else None

    def record(self, package_id: int) -> LocalRecord | None:
        """The local record an outbound package came from, as it was accepted."""
        found = self._payload(package_id, "record")
        if found is None:
            return None
        _, body, meta_text = found
        meta = json.loads(meta_text)
        return LocalRecord(
            record_id=meta["record_id"],
            body=body,
            content_type=meta["content_type"],
            mapping=meta["mapping"],
            kind=RecordKind(meta["kind"]),
            priority=meta["priority"],
            source=meta["source"],
            headers=meta["headers"],
        )

    def counts(self) -> list[StateCount]:
        with self._guard("count packages"):
            rows = (
                self._conn()
                .execute(
                    "SELECT direction, kind, state, COUNT(*) AS n FROM packages "
                    "GROUP BY direction, kind, state ORDER BY direction, kind, state"
                )
                .fetchall()
            )
        result = []
        for row in rows:
            direction = Direction(row["direction"])
            result.append(
                StateCount(
                    direction,
                    PackageKind(row["kind"]),
                    parse_state(direction, row["state"]),
                    row["n"],
                )
            )
        return result

    def oldest_outbox_age(self, now: float | None = None) -> float | None:
        """Seconds since the oldest outbound package still waiting to leave was taken in."""
        states = sorted(s.value for s in OUTBOX_STATES)
        with self._guard("outbox age"):
            row = (
                self._conn()
                .execute(
                    "SELECT MIN(created_at) FROM packages WHERE direction = 'out' "
                    f"AND state IN ({', '.join('?' for _ in states)})",
                    states,
                )
                .fetchone()
            )
        if row[0] is None:
            return None
        return max(0.0, (self._clock() if now is None else now) - float(row[0]))

    def count_past_deadline(self, now: float | None = None) -> int:
        """Outbound documents not sent by their R6 deadline (waiting or failed)."""
        with self._guard("deadline count"):
            row = (
                self._conn()
                .execute(
                    "SELECT COUNT(*) FROM packages WHERE direction = 'out' AND kind = 'edoc' "
                    "AND state IN ('ACCEPTED', 'READY', 'FAILED') AND deadline_at IS NOT NULL "
                    "AND deadline_at <= ?",
                    (self._clock() if now is None else now,),
                )
                .fetchone()
            )
        return int(row[0])
