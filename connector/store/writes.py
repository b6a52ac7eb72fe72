"""The tracking store's writes beyond the outbound path, for SQLite and PostgreSQL alike.

Operator retries, recipient statuses, inbound insertion with its idempotency key and the
plain state moves. Every change is one transaction together with its event row. This module
must not decide what the daemon does next; the allowed moves live in
``connector.store.states``.
"""

from __future__ import annotations

import hashlib

from connector.errors import PermanentError
from connector.store.api import (
    Added,
    AddOutcome,
    ErrorInfo,
    NewInbound,
    SealUse,
    StatusOutcome,
    TrackedPackage,
)
from connector.store.outbound_writes import OutboundWrites
from connector.store.schema import PACKAGE_COLUMNS, package_from_row, recipient_from_row
from connector.store.sql_base import DbConn
from connector.store.states import (
    Direction,
    IllegalTransition,
    InboundState,
    OutboundState,
    PackageState,
    RecipientState,
    check_transition,
    recipient_move_allowed,
    recipient_state_for,
)

_O, _I = OutboundState, InboundState


class StoreWrites(OutboundWrites):
    """Every write of the tracking store; a database class below it supplies connections."""

    def mark_refused(self, package_id: int, error: ErrorInfo) -> TrackedPackage:
        return self.transition(
            package_id,
            _O.REFUSED,
            event="refused",
            detail=f"{error.reason}: {error.message}",
            error=error,
        )

    def retry(self, package_id: int, *, actor: str = "operator") -> TrackedPackage:
        with self._write("retry") as conn:
            return self._retry(conn, self._locked(conn, package_id), actor)

    def _retry(self, conn: DbConn, package: TrackedPackage, actor: str) -> TrackedPackage:
        if package.state not in (_O.FAILED, _I.FAILED):
            raise IllegalTransition(
                f"package #{package.id} is {package.state.value}: only FAILED packages can be "
                "retried"
            )
        target: PackageState
        if package.direction is Direction.INBOUND:
            target = _I.RECEIVED
        else:
            target = _O.READY if self._has_payload(conn, package.id, "raw") else _O.ACCEPTED
        last = f" (last error {package.last_error.reason})" if package.last_error else ""
        return self._move(
            conn,
            package,
            target,
            "retry",
            f"retry requested by {actor}; attempts reset from {package.attempts}{last}",
            clear_error=True,
            columns={"attempts": 0, "next_attempt_at": self._clock()},
        )

    def retry_all_failed(self, *, actor: str = "operator") -> list[TrackedPackage]:
        with self._write("retry all failed") as conn:
            rows = conn.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE state = 'FAILED' ORDER BY id"
                + self._row_lock
            ).fetchall()
            return [self._retry(conn, package_from_row(row), actor) for row in rows]

    def apply_status(
        self,
        package_id: int,
        organ_id: str,
        status_code: str,
        *,
        description: str | None = None,
        source: str = "",
    ) -> StatusOutcome:
        """Move one recipient by a status code; late or contradictory codes are only logged."""
        try:
            target = recipient_state_for(status_code)
        except ValueError as exc:
            raise PermanentError(str(exc), reason="status_code_unknown", stage="store") from None
        with self._write("apply status") as conn:
            package = self._locked(conn, package_id)
            row = conn.execute(
                "SELECT * FROM recipients WHERE package_id = ? AND organ_id = ?",
                (package_id, organ_id),
            ).fetchone()
            extra = (f" ({source})" if source else "") + (f": {description}" if description else "")
            if row is None:
                note = f"{organ_id} is not a recipient of this package; status ignored"
                self._event(
                    conn, package_id, f"status_{status_code}", package.state.value, note + extra
                )
                return StatusOutcome(False, RecipientState.PENDING, RecipientState.PENDING, note)
            current = recipient_from_row(row).state
            now = self._clock()
            if target is current:
                note = f"{organ_id} already {current.value}"
                outcome = StatusOutcome(False, current, current, note)
            elif recipient_move_allowed(current, target):
                conn.execute(
                    "UPDATE recipients SET state = ?, status_code = ?, description = ?, "
                    "updated_at = ? WHERE package_id = ? AND organ_id = ?",
                    (target.value, status_code, description, now, package_id, organ_id),
                )
                note = f"{organ_id}: {current.value} → {target.value}"
                outcome = StatusOutcome(True, current, target)
            else:
                note = (
                    f"{organ_id}: status {status_code} after {current.value}; kept {current.value}"
                )
                outcome = StatusOutcome(False, current, current, note)
            conn.execute("UPDATE packages SET updated_at = ? WHERE id = ?", (now, package_id))
            self._event(
                conn, package_id, f"status_{status_code}", package.state.value, note + extra
            )
            return outcome

    def add_inbound(self, new: NewInbound) -> Added:
        key = new.key()
        check_transition(Direction.INBOUND, new.kind, None, _I.RECEIVED, package=new.hub_id)
        with self._write("add inbound package") as conn:
            self._serialize_key(conn, "in|" + key)
            row = conn.execute(
                f"SELECT {PACKAGE_COLUMNS} FROM packages WHERE direction = 'in' AND idem_key = ?"
                + self._row_lock,
                (key,),
            ).fetchone()
            if row is not None:
                existing = package_from_row(row)
                self._event(
                    conn,
                    existing.id,
                    "duplicate",
                    existing.state.value,
                    # repr: a hub's id is its text (line breaks, bidi), shown escaped
                    f"received again from the hub as {new.hub_id!r}; not processed again",
                )
                return Added(existing, AddOutcome.EXISTING)
            now = self._clock()
            columns = self._facts_columns(new.facts)
            digest = new.content_hash or hashlib.sha256(new.raw).hexdigest()
            package_id = self._insert_id(
                conn,
                "INSERT INTO packages (direction, kind, state, idem_key, hub_id, content_hash, "
                "next_attempt_at, created_at, updated_at, document_id, sender, priority, code, "
                "status_code, deadline_at) VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.kind.value,
                    _I.RECEIVED.value,
                    key,
                    new.hub_id,
                    digest,
                    now,
                    now,
                    now,
                    *columns.values(),
                ),
            )
            package = self._load(conn, package_id)
            self._put_payload(conn, package, "raw", new.raw)
            self._add_recipients(conn, package.id, new.facts.recipients)
            self._event(
                conn,
                package.id,
                "received",
                _I.RECEIVED.value,
                new.detail or f"hub package {new.hub_id}, {len(new.raw)} bytes",
            )
            return Added(package, AddOutcome.CREATED)

    def transition(
        self,
        package_id: int,
        target: PackageState,
        *,
        event: str | None = None,
        detail: str = "",
        error: ErrorInfo | None = None,
        related_id: int | None = None,
    ) -> TrackedPackage:
        """A move that carries no data of its own (the inbound steps, REFUSED, FAILED)."""
        if target in (_O.SENT, _O.READY, _O.ACCEPTED):
            helper = {_O.SENT: "mark_sent", _O.READY: "mark_ready", _O.ACCEPTED: "retry"}[target]
            raise IllegalTransition(
                f"package #{package_id}: use {helper}() to reach {target.value}"
            )
        with self._write(f"move to {target.value}") as conn:
            package = self._locked(conn, package_id)
            columns: dict[str, object] = {}
            if related_id is not None:
                columns["related_id"] = related_id
            if error is not None and not detail:
                detail = f"{error.reason}: {error.message}"
            return self._move(
                conn,
                package,
                target,
                event or target.value.lower(),
                detail,
                error=error,
                columns=columns,
            )

    def add_event(self, package_id: int, event: str, detail: str = "") -> None:
        with self._write("add event") as conn:
            package = self._locked(conn, package_id)
            self._event(conn, package_id, event, package.state.value, detail)

    def first_seal_use(self, digest: str) -> SealUse | None:
        with self._guard("read the seal index"):
            row = self._conn().execute(
                "SELECT receiver, sender, document_id, package_id FROM seals WHERE digest = ? "
                "ORDER BY first_at, package_id LIMIT 1",
                (digest,),
            ).fetchone()
        if row is None:
            return None
        return SealUse(str(row["receiver"]), digest, str(row["sender"]),
                       str(row["document_id"]), int(row["package_id"]))

    def remember_seal(self, use: SealUse) -> SealUse:
        with self._write("remember a seal") as conn:
            self._serialize_key(conn, "seal|" + use.digest)
            # The seal first seen under another sender or DocumentId, for any of our
            # organisations, is the answer (lifted into one organisation's inbox from another's).
            first = conn.execute(
                "SELECT receiver, sender, document_id, package_id FROM seals WHERE digest = ? "
                "ORDER BY first_at, package_id LIMIT 1",
                (use.digest,),
            ).fetchone()
            if first is not None and (first["sender"], first["document_id"]) != (
                use.sender, use.document_id
            ):
                return SealUse(str(first["receiver"]), use.digest, str(first["sender"]),
                               str(first["document_id"]), int(first["package_id"]))
            conn.execute(
                "INSERT INTO seals (receiver, digest, sender, document_id, package_id, first_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (receiver, digest) DO NOTHING",
                (use.receiver, use.digest, use.sender, use.document_id, use.package_id,
                 self._clock()),
            )
            row = conn.execute(
                "SELECT sender, document_id, package_id FROM seals "
                "WHERE receiver = ? AND digest = ?",
                (use.receiver, use.digest),
            ).fetchone()
        return SealUse(use.receiver, use.digest, str(row["sender"]), str(row["document_id"]),
                       int(row["package_id"]))
