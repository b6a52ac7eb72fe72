"""The outbound state changes of the tracking store, for SQLite and PostgreSQL alike.

Insertion with idempotency keys, building, claims with leases (selected and leased in one
transaction, so two sender threads, processes or replicas never get the same package),
sending, retries and failures. Every change is one transaction together with its event row.
This module must not decide what the daemon does next; the allowed moves live in
``connector.store.states``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from connector.errors import PermanentError
from connector.store.api import (
    Added,
    AddOutcome,
    ErrorInfo,
    LeaseLost,
    NewOutbound,
    PackageFacts,
    TrackedPackage,
)
from connector.store.schema import PACKAGE_COLUMNS, package_from_row
from connector.store.sql_base import DbConn, when_text
from connector.store.sqlite_reads import StoreReads
from connector.store.states import (
    Direction,
    IllegalTransition,
    InboundState,
    OutboundState,
    PackageState,
    RecipientState,
    check_transition,
    resumable_states,
)

_O, _I = OutboundState, InboundState


class OutboundWrites(StoreReads):
    """The outbound half of the writes of :class:`connector.store.writes.StoreWrites`."""

    def add_outbound(self, new: NewOutbound) -> Added:
        if not new.local_id.strip():
            raise PermanentError(
                "a local record without an id cannot be tracked",
                reason="record_id_missing",
                stage="store",
            )
        check_transition(Direction.OUTBOUND, new.kind, None, new.state, package=new.local_id)
        if new.state is _O.READY and new.raw is None:
            raise IllegalTransition(f"package {new.local_id}: READY needs the raw package")
        if new.state is _O.REFUSED and new.error is None:
            raise IllegalTransition(f"package {new.local_id}: REFUSED needs the reason")
        with self._write("add outbound package") as conn:
            self._serialize_key(conn, "out|" + new.local_id)
            row = conn.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE direction = 'out' AND idem_key = ?"
                + self._row_lock,
                (new.local_id,),
            ).fetchone()
            if row is not None:
                return self._add_existing_outbound(conn, package_from_row(row), new)
            now = self._clock()
            package_id = self._insert_id(
                conn,
                "INSERT INTO packages (direction, kind, state, idem_key, next_attempt_at, "
                "created_at, updated_at, related_id) VALUES ('out', ?, ?, ?, ?, ?, ?, ?)",
                (new.kind.value, new.state.value, new.local_id, now, now, now, new.related_id),
            )
            self._fill_outbound(conn, self._load(conn, package_id), new)
            self._event(
                conn,
                package_id,
                new.state.value.lower(),
                new.state.value,
                self._outbound_detail(new),
            )
            return Added(self._load(conn, package_id), AddOutcome.CREATED)

    def _add_existing_outbound(
        self, conn: DbConn, existing: TrackedPackage, new: NewOutbound
    ) -> Added:
        if existing.state is _O.REFUSED and new.state is not _O.REFUSED:
            check_transition(
                Direction.OUTBOUND,
                existing.kind,
                existing.state,
                new.state,
                package=f"#{existing.id}",
            )
            conn.execute("DELETE FROM payloads WHERE package_id = ?", (existing.id,))
            self._fill_outbound(conn, existing, new)
            moved = self._move(
                conn,
                existing,
                new.state,
                "resubmitted",
                "the refused record came back: " + self._outbound_detail(new),
                clear_error=True,
                columns={"attempts": 0, "next_attempt_at": self._clock()},
            )
            return Added(moved, AddOutcome.REOPENED)
        if existing.state is _O.REFUSED and new.error is not None:
            conn.execute(
                "UPDATE packages SET error_reason = ?, error_message = ?, error_stage = ?, "
                "updated_at = ? WHERE id = ?",
                (new.error.reason, new.error.message, new.error.stage, self._clock(), existing.id),
            )
            self._event(
                conn,
                existing.id,
                "refused",
                existing.state.value,
                f"refused again: {new.error.reason}: {new.error.message}",
            )
            return Added(self._load(conn, existing.id), AddOutcome.EXISTING)
        self._event(
            conn,
            existing.id,
            "duplicate",
            existing.state.value,
            f"record {new.local_id} submitted again; the package already exists "
            f"({existing.state.value}), nothing changed",
        )
        return Added(existing, AddOutcome.EXISTING)

    def _fill_outbound(self, conn: DbConn, package: TrackedPackage, new: NewOutbound) -> None:
        columns = self._facts_columns(new.facts)
        if new.error is not None:
            columns.update(
                error_reason=new.error.reason,
                error_message=new.error.message,
                error_stage=new.error.stage,
            )
        assignments = ", ".join(f"{name} = ?" for name in columns)
        conn.execute(
            f"UPDATE packages SET {assignments} WHERE id = ?", (*columns.values(), package.id)
        )
        if new.record is not None:
            record = new.record
            meta: dict[str, object] = {
                "record_id": record.record_id,
                "content_type": record.content_type,
                "mapping": record.mapping,
                "kind": record.kind.value,
                "priority": record.priority,
                "source": record.source,
                "headers": dict(record.headers),
            }
            self._put_payload(conn, package, "record", record.body, meta)
        if new.raw is not None:
            self._put_payload(conn, package, "raw", new.raw)
            conn.execute(
                "UPDATE packages SET content_hash = ? WHERE id = ?",
                (hashlib.sha256(new.raw).hexdigest(), package.id),
            )
        if new.state is not _O.REFUSED:
            self._add_recipients(conn, package.id, new.facts.recipients)

    @staticmethod
    def _outbound_detail(new: NewOutbound) -> str:
        if new.detail:
            return new.detail
        if new.error is not None:
            return f"{new.error.reason}: {new.error.message}"
        parts = [f"local record {new.local_id}"]
        if new.raw is not None:
            parts.append(f"package of {len(new.raw)} bytes")
        if new.facts.recipients:
            parts.append("to " + ", ".join(new.facts.recipients))
        return "; ".join(parts)

    def mark_ready(self, package_id: int, raw: bytes, facts: PackageFacts) -> TrackedPackage:
        with self._write("mark ready") as conn:
            package = self._locked(conn, package_id)
            check_transition(
                package.direction, package.kind, package.state, _O.READY, package=f"#{package_id}"
            )
            if self._has_payload(conn, package_id, "raw"):
                raise IllegalTransition(
                    f"package #{package_id} already has its raw bytes: a package is never "
                    "rebuilt with different content under the same id"
                )
            self._put_payload(conn, package, "raw", raw)
            self._add_recipients(conn, package_id, facts.recipients)
            columns = self._facts_columns(facts)
            digest = hashlib.sha256(raw).hexdigest()
            columns.update(content_hash=digest, next_attempt_at=self._clock())
            detail = f"package built: {len(raw)} bytes, sha256 {digest[:16]}…"
            if facts.recipients:
                detail += "; to " + ", ".join(facts.recipients)
            return self._move(conn, package, _O.READY, "ready", detail, columns=columns)

    def claim(
        self,
        owner: str,
        *,
        limit: int = 1,
        lease_seconds: float = 60.0,
        direction: Direction = Direction.OUTBOUND,
        states: Sequence[PackageState] = (OutboundState.READY,),
    ) -> list[TrackedPackage]:
        """Due packages, urgent first (priority 3, 2, 1, 0, then age), leased to ``owner``."""
        if not states:
            return []
        now = self._clock()
        marks = ", ".join("?" for _ in states)
        free, free_params = self._lease_free(now)
        with self._write("claim") as conn:
            rows = conn.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE direction = ? "
                f"AND state IN ({marks}) AND next_attempt_at <= ? AND {free} "
                f"ORDER BY priority DESC, created_at, id LIMIT ?{self._skip_locked}",
                (direction.value, *(s.value for s in states), now, *free_params, limit),
            ).fetchall()
            until = now + lease_seconds
            sets = {"lease_owner": owner, "lease_until": until, **self._lease_columns()}
            if rows:
                conn.executemany(
                    f"UPDATE packages SET {', '.join(f'{name} = ?' for name in sets)} WHERE id = ?",
                    [(*sets.values(), row["id"]) for row in rows],
                )
        return [replace(package_from_row(r), lease_owner=owner, lease_until=until) for r in rows]

    def release(self, package_id: int, owner: str, *, not_before: float | None = None) -> None:
        """Give a claimed package back without counting an attempt (shutdown, hub down)."""
        with self._write("release") as conn:
            conn.execute(
                "UPDATE packages SET lease_owner = NULL, lease_until = NULL, "
                "next_attempt_at = COALESCE(?, next_attempt_at) WHERE id = ? AND lease_owner = ?",
                (not_before, package_id, owner),
            )

    def release_stale_leases(self, current_owner: str) -> int:
        """Free the leases of earlier processes (called at start by the store's only daemon):
        a package claimed by a process that was killed is sent again at once, not after the
        lease runs out. Returns how many were freed."""
        with self._write("release stale leases") as conn:
            cursor = conn.execute(
                "UPDATE packages SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner IS NOT NULL AND lease_owner <> ?",
                (current_owner,),
            )
            return int(cursor.rowcount or 0)

    def hold_lease(self, package_id: int, owner: str, *, lease_seconds: float) -> bool:
        """Extend ``owner``'s lease on the package if it still holds it (see the protocol).
        PostgreSQL: the lease is vouched for again by this replica's current session."""
        sets = {"lease_until": self._clock() + lease_seconds, **self._vouched_lease_columns()}
        with self._write("hold lease") as conn:
            cursor = conn.execute(
                f"UPDATE packages SET {', '.join(f'{name} = ?' for name in sets)} "
                "WHERE id = ? AND lease_owner = ?",
                (*sets.values(), package_id, owner),
            )
            return int(cursor.rowcount or 0) == 1

    def mark_sent(
        self, package_id: int, hub_id: str, *, owner: str | None = None
    ) -> TrackedPackage:
        with self._write("mark sent") as conn:
            package = self._locked(conn, package_id)  # the row stays locked until commit
            if package.state is _O.SENT and package.hub_id == hub_id:
                return package  # the same success reported twice
            if owner is not None and package.lease_owner != owner:
                raise LeaseLost(package_id, owner, package.lease_owner)
            now = self._clock()
            conn.execute(
                "UPDATE recipients SET state = ?, updated_at = ? "
                "WHERE package_id = ? AND state = ?",
                (RecipientState.SENT.value, now, package_id, RecipientState.PENDING.value),
            )
            attempts = package.attempts + 1
            return self._move(
                conn,
                package,
                _O.SENT,
                "sent",
                f"hub accepted it as {hub_id} (attempt {attempts})",
                clear_error=True,
                columns={"hub_id": hub_id, "attempts": attempts},
            )

    def schedule_retry(
        self,
        package_id: int,
        error: ErrorInfo,
        next_attempt_at: float,
        *,
        count_attempt: bool = True,
    ) -> TrackedPackage:
        with self._write("schedule retry") as conn:
            package = self._locked(conn, package_id)
            if not self._in_progress(package):
                raise IllegalTransition(
                    f"package #{package_id} is {package.state.value}: nothing to retry"
                )
            attempts = package.attempts + (1 if count_attempt else 0)
            conn.execute(
                "UPDATE packages SET attempts = ?, next_attempt_at = ?, lease_owner = NULL, "
                "lease_until = NULL, error_reason = ?, error_message = ?, error_stage = ?, "
                "updated_at = ? WHERE id = ?",
                (
                    attempts,
                    next_attempt_at,
                    error.reason,
                    error.message,
                    error.stage,
                    self._clock(),
                    package_id,
                ),
            )
            event = "retry_scheduled" if count_attempt else "deferred"
            what = f"attempt {attempts} failed" if count_attempt else "not attempted"
            self._event(
                conn,
                package_id,
                event,
                package.state.value,
                f"{what}: {error.reason}: {error.message}; next attempt at "
                f"{when_text(next_attempt_at)}",
            )
            return self._load(conn, package_id)

    @staticmethod
    def _in_progress(package: TrackedPackage) -> bool:
        return package.state in resumable_states(package.direction, package.kind)

    def mark_failed(
        self, package_id: int, error: ErrorInfo, *, count_attempt: bool = True
    ) -> TrackedPackage:
        with self._write("mark failed") as conn:
            package = self._locked(conn, package_id)
            target = _O.FAILED if package.direction is Direction.OUTBOUND else _I.FAILED
            attempts = package.attempts + (1 if count_attempt else 0)
            return self._move(
                conn,
                package,
                target,
                "failed",
                f"{error.reason}: {error.message}",
                error=error,
                columns={"attempts": attempts},
            )
