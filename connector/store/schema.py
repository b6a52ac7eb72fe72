"""The SQLite schema of the tracking store and the conversion of its rows into values.

PostgreSQL's schema, the same tables in its own types, is in ``postgres_schema``.

Payloads live in their own table so that the frequent small updates of a package row (lease,
attempts, state) never rewrite a multi-megabyte blob. The event log is append-only, enforced
by triggers. ``PRAGMA user_version`` carries the schema version. This module must not open
databases or decide states.
"""

from __future__ import annotations

from typing import Any, Protocol

from connector.store.api import ErrorInfo, Event, Recipient, TrackedPackage
from connector.store.states import Direction, PackageKind, RecipientState, parse_state

SCHEMA_VERSION = 2  # 2: seals (the inbound seal index)

DDL = """
CREATE TABLE IF NOT EXISTS packages (
    id              INTEGER PRIMARY KEY,
    direction       TEXT    NOT NULL CHECK (direction IN ('out', 'in')),
    kind            TEXT    NOT NULL CHECK (kind IN ('edoc', 'status')),
    state           TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    document_id     TEXT    NOT NULL DEFAULT '',
    sender          TEXT    NOT NULL DEFAULT '',
    priority        INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    hub_id          TEXT,
    code            TEXT,
    status_code     TEXT,
    deadline_at     REAL,
    content_hash    TEXT,
    related_id      INTEGER REFERENCES packages (id),
    lease_owner     TEXT,
    lease_until     REAL,
    error_reason    TEXT,
    error_message   TEXT,
    error_stage     TEXT,
    UNIQUE (direction, idem_key)
);
CREATE INDEX IF NOT EXISTS packages_due
    ON packages (direction, state, priority DESC, created_at, id);
CREATE INDEX IF NOT EXISTS packages_document ON packages (document_id);
CREATE INDEX IF NOT EXISTS packages_hub ON packages (hub_id);

CREATE TABLE IF NOT EXISTS recipients (
    package_id  INTEGER NOT NULL REFERENCES packages (id),
    organ_id    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    status_code TEXT,
    description TEXT,
    updated_at  REAL    NOT NULL,
    PRIMARY KEY (package_id, organ_id)
);

CREATE TABLE IF NOT EXISTS payloads (
    package_id INTEGER NOT NULL REFERENCES packages (id),
    part       TEXT    NOT NULL CHECK (part IN ('raw', 'record')),
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    meta       TEXT    NOT NULL DEFAULT '{}',
    sealed     BLOB    NOT NULL,
    PRIMARY KEY (package_id, part)
);

CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    package_id INTEGER NOT NULL REFERENCES packages (id),
    at         REAL    NOT NULL,
    event      TEXT    NOT NULL,
    state      TEXT,
    detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_package ON events (package_id, id);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE IF NOT EXISTS seals (
    receiver    TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    document_id TEXT    NOT NULL,
    package_id  INTEGER NOT NULL REFERENCES packages (id),
    first_at    REAL    NOT NULL,
    PRIMARY KEY (receiver, digest)
);
CREATE INDEX IF NOT EXISTS seals_digest ON seals (digest);
"""



class RowLike(Protocol):
    """A result row by column name (``sqlite3.Row``, or the PostgreSQL store's rows)."""

    def __getitem__(self, key: Any, /) -> Any: ...


PACKAGE_COLUMNS = (
    "id, direction, kind, state, idem_key, document_id, sender, priority, attempts, "
    "next_attempt_at, created_at, updated_at, hub_id, code, status_code, deadline_at, "
    "content_hash, related_id, lease_owner, lease_until, error_reason, error_message, error_stage"
)


def package_from_row(row: RowLike) -> TrackedPackage:
    direction = Direction(row["direction"])
    error = None
    if row["error_reason"] is not None:
        error = ErrorInfo(row["error_reason"], row["error_message"] or "", row["error_stage"])
    return TrackedPackage(
        id=row["id"],
        direction=direction,
        kind=PackageKind(row["kind"]),
        state=parse_state(direction, row["state"]),
        key=row["idem_key"],
        document_id=row["document_id"],
        sender=row["sender"],
        priority=row["priority"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        hub_id=row["hub_id"],
        code=row["code"],
        status_code=row["status_code"],
        deadline_at=row["deadline_at"],
        content_hash=row["content_hash"],
        related_id=row["related_id"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        last_error=error,
    )


def recipient_from_row(row: RowLike) -> Recipient:
    return Recipient(
        organ_id=row["organ_id"],
        state=RecipientState(row["state"]),
        status_code=row["status_code"],
        description=row["description"],
        updated_at=row["updated_at"],
    )


def event_from_row(row: RowLike) -> Event:
    return Event(at=row["at"], event=row["event"], state=row["state"], detail=row["detail"])
