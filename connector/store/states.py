"""The tracking state machines: every state, and every allowed move, in one place.

Outbound packages (documents *and* status packages we send)::

    (insert) ─► ACCEPTED ─► READY ─► SENT
        │          │  │       │
        │          │  └──────►┴──► FAILED ──(operator retry)──► READY (or ACCEPTED)
        │          └─► REFUSED ──(corrected record dropped again)──► ACCEPTED / READY
        └─► READY or REFUSED directly when the pipeline ran before the insert

* ACCEPTED: the local record is stored (encrypted); the local side may be acknowledged.
* READY: the package is built, sealed and signed; its raw bytes are stored and never change.
  A failed attempt keeps it READY with ``attempts`` and ``next_attempt_at`` moved on.
* SENT: the hub accepted it and gave its package id. Per-recipient tracking continues in
  :class:`RecipientState`.
* FAILED: given up (permanent refusal or attempts exhausted), with the reason.
* REFUSED: refused before packaging (secret document, mapping error); never sent.

Inbound packages::

    RECEIVED ─► VERIFIED ─► DELIVERED ─► ACKNOWLEDGED ─► NOTIFIED        (edoc)
        │           │                    (terminal for status packages)
        └───────────┴─► REJECTED ─► REJECTION_NOTIFIED
        └───────────┴─► FAILED ──(operator retry)──► RECEIVED

* RECEIVED: the raw bytes from the hub are stored. VERIFIED: signatures, certificates and
  schema checked. DELIVERED: handed durably to the local side. ACKNOWLEDGED: the hub was told
  ``done``. NOTIFIED: the automatic status 01 is queued (as an outbound package).
* REJECTED: integrity or authenticity failed; REJECTION_NOTIFIED: the hub was told ``fail``
  and (for documents) status 02 is queued.
* FAILED: our side cannot process it (e.g. the mapping back fails); an operator fixes the
  cause and retries.

Recipient states follow the status codes the recipients send back (01–06, 15, 16) and the
recall we send (13). Peers' statuses arrive late or out of order, so for recipients a move
that the table does not allow is recorded and ignored rather than raised.

This module holds data and pure functions only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from connector.errors import ConnectorError


class Direction(enum.Enum):
    OUTBOUND = "out"
    INBOUND = "in"


class PackageKind(enum.Enum):
    EDOC = "edoc"
    STATUS = "status"


class OutboundState(enum.Enum):
    ACCEPTED = "ACCEPTED"
    READY = "READY"
    SENT = "SENT"
    FAILED = "FAILED"
    REFUSED = "REFUSED"


class InboundState(enum.Enum):
    RECEIVED = "RECEIVED"
    VERIFIED = "VERIFIED"
    DELIVERED = "DELIVERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    NOTIFIED = "NOTIFIED"
    REJECTED = "REJECTED"
    REJECTION_NOTIFIED = "REJECTION_NOTIFIED"
    FAILED = "FAILED"


PackageState = OutboundState | InboundState

_O, _I = OutboundState, InboundState

# THE table of package moves. Key ``(direction, None)`` lists the states a package may be
# inserted in.
TRANSITIONS: Mapping[tuple[Direction, PackageState | None], frozenset[PackageState]] = {
    (Direction.OUTBOUND, None): frozenset({_O.ACCEPTED, _O.READY, _O.REFUSED}),
    (Direction.OUTBOUND, _O.ACCEPTED): frozenset({_O.READY, _O.REFUSED, _O.FAILED}),
    (Direction.OUTBOUND, _O.READY): frozenset({_O.SENT, _O.FAILED}),
    (Direction.OUTBOUND, _O.SENT): frozenset(),
    (Direction.OUTBOUND, _O.FAILED): frozenset({_O.READY, _O.ACCEPTED}),
    (Direction.OUTBOUND, _O.REFUSED): frozenset({_O.ACCEPTED, _O.READY}),
    (Direction.INBOUND, None): frozenset({_I.RECEIVED}),
    (Direction.INBOUND, _I.RECEIVED): frozenset({_I.VERIFIED, _I.REJECTED, _I.FAILED}),
    (Direction.INBOUND, _I.VERIFIED): frozenset({_I.DELIVERED, _I.REJECTED, _I.FAILED}),
    (Direction.INBOUND, _I.DELIVERED): frozenset({_I.ACKNOWLEDGED}),
    (Direction.INBOUND, _I.ACKNOWLEDGED): frozenset({_I.NOTIFIED}),
    (Direction.INBOUND, _I.NOTIFIED): frozenset(),
    (Direction.INBOUND, _I.REJECTED): frozenset({_I.REJECTION_NOTIFIED}),
    (Direction.INBOUND, _I.REJECTION_NOTIFIED): frozenset(),
    (Direction.INBOUND, _I.FAILED): frozenset({_I.RECEIVED}),
}

# Moves the table allows in general but a kind of package may not make: nobody answers a
# status package with a status 01.
KIND_EXCLUDED: Mapping[
    tuple[Direction, PackageKind], frozenset[tuple[PackageState, PackageState]]
] = {
    (Direction.INBOUND, PackageKind.STATUS): frozenset({(_I.ACKNOWLEDGED, _I.NOTIFIED)}),
}

# States in which a package needs no more work from the daemon.
_TERMINAL: Mapping[tuple[Direction, PackageKind], frozenset[PackageState]] = {
    (Direction.OUTBOUND, PackageKind.EDOC): frozenset({_O.SENT, _O.FAILED, _O.REFUSED}),
    (Direction.OUTBOUND, PackageKind.STATUS): frozenset({_O.SENT, _O.FAILED, _O.REFUSED}),
    (Direction.INBOUND, PackageKind.EDOC): frozenset(
        {_I.NOTIFIED, _I.REJECTION_NOTIFIED, _I.FAILED}
    ),
    (Direction.INBOUND, PackageKind.STATUS): frozenset(
        {_I.ACKNOWLEDGED, _I.NOTIFIED, _I.REJECTION_NOTIFIED, _I.FAILED}
    ),
}

# Outbound states that count as "waiting to leave" (outbox size, age of the oldest).
OUTBOX_STATES: frozenset[OutboundState] = frozenset({_O.ACCEPTED, _O.READY})


class IllegalTransition(ConnectorError):
    """A move the state table does not allow: a bug or a race, never a message's fault."""

    kind = "illegal_transition"

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="illegal_transition", stage="store")


def parse_state(direction: Direction, value: str) -> PackageState:
    """The state named ``value`` (case-insensitive) in ``direction``'s machine."""
    enum_type: type[OutboundState] | type[InboundState] = (
        OutboundState if direction is Direction.OUTBOUND else InboundState
    )
    try:
        return enum_type(value.upper())
    except ValueError:
        names = ", ".join(s.value for s in enum_type)
        raise ValueError(f"{value!r} is not a {direction.name.lower()} state ({names})") from None


def is_allowed(
    direction: Direction, kind: PackageKind, current: PackageState | None, target: PackageState
) -> bool:
    allowed = TRANSITIONS.get((direction, current), frozenset())
    if target not in allowed:
        return False
    if current is None:
        return True
    return (current, target) not in KIND_EXCLUDED.get((direction, kind), frozenset())


def check_transition(
    direction: Direction,
    kind: PackageKind,
    current: PackageState | None,
    target: PackageState,
    *,
    package: str = "",
) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is in the table."""
    if not is_allowed(direction, kind, current, target):
        start = current.value if current is not None else "(new)"
        allowed = sorted(s.value for s in TRANSITIONS.get((direction, current), frozenset()))
        raise IllegalTransition(
            f"{direction.name.lower()} {kind.value} package {package}: {start} → "
            f"{target.value} is not allowed (from {start}: {', '.join(allowed) or 'nothing'})"
        )


def is_terminal(direction: Direction, kind: PackageKind, state: PackageState) -> bool:
    return state in _TERMINAL[(direction, kind)]


def resumable_states(direction: Direction, kind: PackageKind) -> frozenset[PackageState]:
    """States from which the daemon must carry a package on (after a restart, too)."""
    every: frozenset[PackageState] = frozenset(
        OutboundState if direction is Direction.OUTBOUND else InboundState
    )
    return every - _TERMINAL[(direction, kind)]


class RecipientState(enum.Enum):
    """Where an outbound package stands with one recipient (OrganId)."""

    PENDING = "PENDING"  # not yet accepted by the hub
    SENT = "SENT"  # the hub accepted the package
    ARRIVED = "ARRIVED"  # 01 Đã đến
    REJECTED = "REJECTED"  # 02 Từ chối tiếp nhận
    ACCEPTED = "ACCEPTED"  # 03 Đã tiếp nhận
    ASSIGNED = "ASSIGNED"  # 04 Phân công
    PROCESSING = "PROCESSING"  # 05 Đang xử lý
    FINISHED = "FINISHED"  # 06 Hoàn thành
    RECALL_REQUESTED = "RECALL_REQUESTED"  # 13 sent by us
    RECALLED = "RECALLED"  # 15 Đồng ý cập nhật/lấy lại
    RECALL_REFUSED = "RECALL_REFUSED"  # 16 Từ chối cập nhật/lấy lại


_R = RecipientState

STATUS_TO_RECIPIENT_STATE: Mapping[str, RecipientState] = {
    "01": _R.ARRIVED,
    "02": _R.REJECTED,
    "03": _R.ACCEPTED,
    "04": _R.ASSIGNED,
    "05": _R.PROCESSING,
    "06": _R.FINISHED,
    "13": _R.RECALL_REQUESTED,
    "15": _R.RECALLED,
    "16": _R.RECALL_REFUSED,
}

_PROGRESS = (_R.ARRIVED, _R.ACCEPTED, _R.ASSIGNED, _R.PROCESSING, _R.FINISHED)
_RECALL = frozenset({_R.RECALL_REQUESTED, _R.RECALLED, _R.RECALL_REFUSED})


def _after(state: RecipientState) -> frozenset[RecipientState]:
    """The progress states strictly later than ``state`` (statuses may skip steps)."""
    return (
        frozenset(_PROGRESS[_PROGRESS.index(state) + 1 :])
        if state in _PROGRESS
        else frozenset(_PROGRESS)
    )


# THE table of recipient moves. A recipient's status may overtake our own SENT mark (the
# hub answers slower than the peer), so PENDING already admits the peer's statuses.
RECIPIENT_TRANSITIONS: Mapping[RecipientState, frozenset[RecipientState]] = {
    _R.PENDING: frozenset({_R.SENT, _R.REJECTED, *_PROGRESS}),
    _R.SENT: frozenset({_R.REJECTED, *_PROGRESS, *_RECALL}),
    _R.ARRIVED: _after(_R.ARRIVED) | {_R.REJECTED} | _RECALL,
    _R.ACCEPTED: _after(_R.ACCEPTED) | {_R.REJECTED} | _RECALL,
    _R.ASSIGNED: _after(_R.ASSIGNED) | {_R.REJECTED} | _RECALL,
    _R.PROCESSING: _after(_R.PROCESSING) | {_R.REJECTED} | _RECALL,
    _R.FINISHED: _RECALL,
    _R.REJECTED: frozenset(),
    _R.RECALL_REQUESTED: frozenset({_R.RECALLED, _R.RECALL_REFUSED}),
    _R.RECALLED: frozenset(),
    _R.RECALL_REFUSED: frozenset({_R.REJECTED, *_PROGRESS, _R.RECALL_REQUESTED}),
}


def recipient_state_for(status_code: str) -> RecipientState:
    """The recipient state a status code leads to; ValueError for an unknown code."""
    try:
        return STATUS_TO_RECIPIENT_STATE[status_code]
    except KeyError:
        known = ", ".join(STATUS_TO_RECIPIENT_STATE)
        raise ValueError(f"status code {status_code!r} is not one of {known}") from None


def recipient_move_allowed(current: RecipientState, target: RecipientState) -> bool:
    return target in RECIPIENT_TRANSITIONS[current]
