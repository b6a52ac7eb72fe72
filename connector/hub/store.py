"""The hub emulator's durable state: received packages and per-recipient deliveries (SQLite).

A *package* is what a sender handed over (its bytes, routing facts, the sender's DocId).
A *delivery* is one copy of it in one recipient's inbox, with its own DocId (the id the
recipient lists, fetches and acknowledges) and state ``pending`` -> ``done`` | ``fail``.
A resend of identical bytes by the same sender for the same message type is recognised
and answered with the original DocId without delivering again.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed send survives the
emulator being killed (not a power cut, which a test hub does not need). One connection
guarded by a lock serves all request threads. This module must not know about HTTP.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connector.timeutil import format_timestamp, now_vn

_SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    doc_id        TEXT PRIMARY KEY,
    sender        TEXT NOT NULL,
    systemid      TEXT NOT NULL,
    message_type  TEXT NOT NULL CHECK (message_type IN ('edoc', 'status')),
    sha256        TEXT NOT NULL,
    document_id   TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    status_code   TEXT,
    size          INTEGER NOT NULL,
    data          BLOB NOT NULL,
    received_at   TEXT NOT NULL,
    UNIQUE (sender, message_type, sha256)
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id   TEXT NOT NULL UNIQUE,
    doc_id        TEXT NOT NULL REFERENCES packages (doc_id),
    recipient     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'fail')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_inbox ON deliveries (recipient, state);
CREATE INDEX IF NOT EXISTS deliveries_doc ON deliveries (doc_id);
CREATE INDEX IF NOT EXISTS packages_document ON packages (sender, document_id);
"""


@dataclass(frozen=True)
class StoredPackage:
    doc_id: str
    sender: str
    systemid: str
    message_type: str
    sha256: str
    document_id: str
    priority: int
    status_code: str | None
    size: int
    received_at: str
    data: bytes


@dataclass(frozen=True)
class Delivery:
    delivery_id: str  # the DocId the recipient sees
    doc_id: str  # the sender's DocId
    recipient: str
    sender: str
    message_type: str
    document_id: str
    priority: int
    status_code: str | None
    state: str
    created_at: str
    updated_at: str


_PACKAGE_COLUMNS = """
    doc_id, sender, systemid, message_type, sha256, document_id, priority, status_code, size,
    received_at, data
"""
_DELIVERY_COLUMNS = """
    d.delivery_id, d.doc_id, d.recipient, p.sender, p.message_type, p.document_id,
    p.priority, p.status_code, d.state, d.created_at, d.updated_at
"""


class HubStore:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes ---------------------------------------------------------------------------

    def accept(
        self,
        *,
        sender: str,
        systemid: str,
        message_type: str,
        sha256: str,
        document_id: str,
        priority: int,
        status_code: str | None,
        data: bytes,
        recipients: Sequence[str],
    ) -> tuple[str, bool]:
        """Store a package and deliver it; return (sender's DocId, True if new)."""
        now = format_timestamp(now_vn())
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT doc_id FROM packages WHERE sender=? AND message_type=? AND sha256=?",
                    (sender, message_type, sha256),
                ).fetchone()
                if row is not None:
                    self._db.execute("COMMIT")
                    return str(row[0]), False
                doc_id = str(uuid.uuid4())
                self._db.execute(
                    "INSERT INTO packages VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc_id,
                        sender,
                        systemid,
                        message_type,
                        sha256,
                        document_id,
                        priority,
                        status_code,
                        len(data),
                        data,
                        now,
                    ),
                )
                for recipient in dict.fromkeys(recipients):
                    self._insert_delivery(doc_id, recipient, now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return doc_id, True

    def settle(self, delivery_id: str, recipient: str, ok: bool) -> Delivery | None:
        """Mark a delivery done/fail; the first settlement wins, repeats are no-ops."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET state=?, updated_at=? "
                "WHERE delivery_id=? AND recipient=? AND state='pending'",
                ("done" if ok else "fail", format_timestamp(now_vn()), delivery_id, recipient),
            )
        return self.delivery(delivery_id, recipient)

    def redeliver(self, delivery_id: str) -> str:
        """Put the package of a delivery into the same inbox again, under a new DocId."""
        now = format_timestamp(now_vn())
        with self._lock:
            row = self._db.execute(
                "SELECT doc_id, recipient FROM deliveries WHERE delivery_id=?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise KeyError(delivery_id)
            return self._insert_delivery(str(row[0]), str(row[1]), now)

    def _insert_delivery(self, doc_id: str, recipient: str, now: str) -> str:
        delivery_id = str(uuid.uuid4())
        self._db.execute(
            "INSERT INTO deliveries (delivery_id, doc_id, recipient, state, created_at, "
            "updated_at) VALUES (?,?,?,'pending',?,?)",
            (delivery_id, doc_id, recipient, now, now),
        )
        return delivery_id

    # -- reads ----------------------------------------------------------------------------

    def inbox(self, recipient: str, message_type: str | None = None) -> list[Delivery]:
        """Pending deliveries of a recipient, most urgent first, then oldest first."""
        sql = (
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN packages p USING (doc_id) "
            "WHERE d.recipient=? AND d.state='pending'"
        )
        args: tuple[str, ...] = (recipient,)
        if message_type is not None:
            sql += " AND p.message_type=?"
            args += (message_type,)
        return self._deliveries(sql + " ORDER BY p.priority DESC, d.seq", args)

    def recipients_of(self, sender: str, document_id: str) -> list[str]:
        """Everyone a sender's edoc packages with this DocumentId were delivered to."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT d.recipient FROM deliveries d JOIN packages p USING (doc_id) "
                "WHERE p.sender=? AND p.document_id=? AND p.message_type='edoc' ORDER BY d.seq",
                (sender, document_id),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def deliveries(
        self, *, recipient: str | None = None, sender: str | None = None
    ) -> list[Delivery]:
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN packages p USING (doc_id)"
        where, args = [], []
        if recipient is not None:
            where.append("d.recipient=?")
            args.append(recipient)
        if sender is not None:
            where.append("p.sender=?")
            args.append(sender)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._deliveries(sql + " ORDER BY d.seq", tuple(args))

    def delivery(self, delivery_id: str, recipient: str | None = None) -> Delivery | None:
        sql = (
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN packages p USING (doc_id) "
            "WHERE d.delivery_id=?"
        )
        args: tuple[str, ...] = (delivery_id,)
        if recipient is not None:
            sql += " AND d.recipient=?"
            args += (recipient,)
        found = self._deliveries(sql, args)
        return found[0] if found else None

    def package(self, doc_id: str) -> StoredPackage | None:
        found = self._packages(f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE doc_id=?", (doc_id,))
        return found[0] if found else None

    def packages(self) -> list[StoredPackage]:
        return self._packages(f"SELECT {_PACKAGE_COLUMNS} FROM packages ORDER BY rowid", ())

    def _deliveries(self, sql: str, args: tuple[str, ...]) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Delivery(*row) for row in rows]

    def _packages(self, sql: str, args: tuple[str, ...]) -> list[StoredPackage]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [StoredPackage(*row) for row in rows]
