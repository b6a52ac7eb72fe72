"""The tracking store's narrow interface: the values it returns and the ``TrackingStore`` protocol.

The daemon, the metrics and the operator CLI talk only to :class:`TrackingStore`; SQLite
(``connector.store.sqlite``) is the embedded implementation, PostgreSQL
(``connector.store.postgres``) the one several replicas share. Payloads (the raw package,
the local record) are sealed by a :class:`PayloadCipher` before they reach the database.
Times are POSIX seconds (UTC).

This module holds types only; it must not do I/O.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from connector.errors import ConnectorError
from connector.local.base import LocalRecord
from connector.store.states import (
    Direction,
    InboundState,
    OutboundState,
    PackageKind,
    PackageState,
    RecipientState,
)


@runtime_checkable
class PayloadCipher(Protocol):
    """Seals payloads at rest (``connector.trust.atrest`` provides the real one).

    ``aad`` binds a sealed blob to its place: a blob copied to another package fails to open.
    """

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes: ...

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes: ...


class PlaintextCipherForTests:
    """Stores payloads as they are. For tests only: production seals with AES-GCM."""

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        return bytes(data)

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        return bytes(blob)


class UnknownPackage(ConnectorError):
    kind = "unknown_package"

    def __init__(self, package_id: int) -> None:
        super().__init__(f"no package #{package_id} in the store", reason="unknown_package")
        self.package_id = package_id


class LeaseLost(ConnectorError):
    """A package's lease is no longer its claimer's: another replica took the package over
    (the claimer's database session was cut, or the lease ran out). The new holder settles
    it; the claimer must not record anything about it."""

    kind = "lease_lost"

    def __init__(self, package_id: int, owner: str, holder: str | None) -> None:
        now_with = f"now held by {holder}" if holder else "no longer leased to it"
        super().__init__(
            f"package #{package_id} was claimed by {owner} but is {now_with}",
            reason="lease_lost",
            stage="store",
        )
        self.package_id = package_id
        self.holder = holder


@dataclass(frozen=True)
class ErrorInfo:
    """The last error of a package: a stable reason code and a readable message."""

    reason: str
    message: str
    stage: str | None = None

    @classmethod
    def of(cls, error: ConnectorError) -> ErrorInfo:
        return cls(reason=error.reason, message=error.message, stage=error.stage)


@dataclass(frozen=True)
class PackageFacts:
    """What the store indexes about a package (known once it is mapped or parsed)."""

    document_id: str = ""  # edoc: its DocumentId; status: ResponseFor/DocumentId
    sender: str = ""  # From/OrganId
    recipients: tuple[str, ...] = ()  # To OrganIds (outbound: tracked per recipient)
    priority: int = 0  # 0..3 (4 is stored as 3)
    code: str | None = None  # "số/ký hiệu"
    status_code: str | None = None  # status packages: 01..16
    deadline_at: float | None = None  # R6: latest time to send (outbound documents)


@dataclass(frozen=True)
class NewOutbound:
    """A package to track on the way out.

    ``local_id`` is the idempotency key: the local record id, or for packages the daemon
    makes itself (the automatic 01, a 02) a key it derives, e.g. ``notice-01:<inbound id>``.
    Insert in ACCEPTED with ``record``; in READY with ``raw`` and ``facts``; in REFUSED with
    ``error``.
    """

    local_id: str
    kind: PackageKind
    state: OutboundState = OutboundState.ACCEPTED
    record: LocalRecord | None = None
    raw: bytes | None = field(default=None, repr=False)
    facts: PackageFacts = field(default_factory=PackageFacts)
    error: ErrorInfo | None = None
    related_id: int | None = None  # the inbound package a notice answers
    detail: str = ""  # for the first event


@dataclass(frozen=True)
class NewInbound:
    """A package fetched from the hub. The idempotency key is sender + DocumentId + kind +
    content hash (SHA-256 of ``raw`` unless the daemon gives a hash of its own)."""

    hub_id: str
    kind: PackageKind
    raw: bytes = field(repr=False)
    facts: PackageFacts = field(default_factory=PackageFacts)
    content_hash: str | None = None
    detail: str = ""

    def key(self) -> str:
        digest = self.content_hash or hashlib.sha256(self.raw).hexdigest()
        return inbound_key(self.facts.sender, self.facts.document_id, self.kind, digest)


def inbound_key(sender: str, document_id: str, kind: PackageKind, content_hash: str) -> str:
    return f"{sender}|{document_id}|{kind.value}|{content_hash}"


@dataclass(frozen=True)
class SealUse:
    """A sealed main document as first accepted for one of our organisations: the sender and
    DocumentId a later package carrying the same seal (same signed digest) must also carry.
    Lets the daemon recognise a genuine seal lifted into forged or repeated metadata."""

    receiver: str  # our OrganId the document was addressed to
    digest: str  # "<algorithm>:<hex>" of the seal's signed byte ranges
    sender: str
    document_id: str
    package_id: int


@dataclass(frozen=True)
class TrackedPackage:
    id: int
    direction: Direction
    kind: PackageKind
    state: PackageState
    key: str  # the idempotency key (outbound: the local record id)
    document_id: str
    sender: str
    priority: int
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    hub_id: str | None = None
    code: str | None = None
    status_code: str | None = None
    deadline_at: float | None = None
    content_hash: str | None = None
    related_id: int | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    last_error: ErrorInfo | None = None

    @property
    def outbound_state(self) -> OutboundState:
        assert isinstance(self.state, OutboundState), self
        return self.state

    @property
    def inbound_state(self) -> InboundState:
        assert isinstance(self.state, InboundState), self
        return self.state


class AddOutcome(enum.Enum):
    CREATED = "created"  # a new package
    EXISTING = "existing"  # the key is known: nothing changed (a duplicate)
    REOPENED = "reopened"  # a REFUSED record came back corrected and starts again


@dataclass(frozen=True)
class Added:
    package: TrackedPackage
    outcome: AddOutcome

    @property
    def is_new_work(self) -> bool:
        return self.outcome is not AddOutcome.EXISTING


@dataclass(frozen=True)
class Recipient:
    organ_id: str
    state: RecipientState
    status_code: str | None  # the last status code received from (or sent to) it
    description: str | None  # e.g. the reason of a 02
    updated_at: float


@dataclass(frozen=True)
class Event:
    at: float
    event: str  # short name: accepted, ready, sent, retry_scheduled, status_01 ...
    state: str | None  # the package's state after the event
    detail: str


@dataclass(frozen=True)
class StatusOutcome:
    """The effect of a status code on one recipient's state."""

    applied: bool  # the state moved
    previous: RecipientState
    current: RecipientState
    note: str = ""  # why it did not move, when it did not


@dataclass(frozen=True)
class StateCount:
    direction: Direction
    kind: PackageKind
    state: PackageState
    count: int


# Recipient states that wait for the peer (or the hub) to move on: the backlog gauges.
RECIPIENT_WAITING_STATES: tuple[RecipientState, ...] = (
    RecipientState.PENDING,
    RecipientState.SENT,
    RecipientState.ARRIVED,
    RecipientState.ACCEPTED,
    RecipientState.ASSIGNED,
    RecipientState.PROCESSING,
    RecipientState.RECALL_REQUESTED,
)


@dataclass(frozen=True)
class RecipientBacklog:
    """Recipients of outbound documents in one state: how many, and since when the oldest."""

    state: RecipientState
    count: int
    oldest_since: float  # the earliest ``updated_at`` (seconds since the epoch)


@dataclass(frozen=True)
class PackageFilter:
    """What ``find_matching`` selects; every given criterion must hold."""

    direction: Direction | None = None
    states: Sequence[PackageState] = ()
    recipient_state: RecipientState | None = None  # a recipient in this state ...
    organ_id: str | None = None  # ... that is this OrganId (or, inbound, this sender)
    unchanged_since: float | None = None  # ... and unchanged since (else: the package)


class TrackingStore(Protocol):
    """Every package in and out, its state, recipients, events and payloads.

    Each state change is one transaction together with its event row. Moves outside the
    table in ``connector.store.states`` raise ``IllegalTransition``. Database failures raise
    ``UnavailableError`` (reason ``store_unavailable``).
    """

    # -- outbound -------------------------------------------------------------------------
    def add_outbound(self, new: NewOutbound) -> Added: ...

    def mark_ready(self, package_id: int, raw: bytes, facts: PackageFacts) -> TrackedPackage: ...

    def claim(
        self,
        owner: str,
        *,
        limit: int = 1,
        lease_seconds: float = 60.0,
        direction: Direction = Direction.OUTBOUND,
        states: Sequence[PackageState] = (OutboundState.READY,),
    ) -> list[TrackedPackage]: ...

    def release(self, package_id: int, owner: str, *, not_before: float | None = None) -> None: ...

    def release_stale_leases(self, current_owner: str) -> int: ...

    def hold_lease(self, package_id: int, owner: str, *, lease_seconds: float) -> bool:
        """Whether ``owner`` still holds the lease it claimed on the package, extending it by
        ``lease_seconds`` if so. Asked right before the hub call (fencing): a package another
        replica took over meanwhile is left to that replica."""
        ...

    def mark_sent(
        self, package_id: int, hub_id: str, *, owner: str | None = None
    ) -> TrackedPackage:
        """Record the hub's acceptance. With ``owner`` (fencing): only while ``owner`` holds
        the package's lease, else ``LeaseLost`` and nothing changes."""
        ...

    def schedule_retry(
        self,
        package_id: int,
        error: ErrorInfo,
        next_attempt_at: float,
        *,
        count_attempt: bool = True,
    ) -> TrackedPackage: ...

    def mark_failed(
        self, package_id: int, error: ErrorInfo, *, count_attempt: bool = True
    ) -> TrackedPackage: ...

    def mark_refused(self, package_id: int, error: ErrorInfo) -> TrackedPackage: ...

    def retry(self, package_id: int, *, actor: str = "operator") -> TrackedPackage: ...

    def retry_all_failed(self, *, actor: str = "operator") -> list[TrackedPackage]: ...

    def find_outbound_documents(
        self, document_id: str, recipient: str | None = None
    ) -> list[TrackedPackage]: ...

    def apply_status(
        self,
        package_id: int,
        organ_id: str,
        status_code: str,
        *,
        description: str | None = None,
        source: str = "",
    ) -> StatusOutcome: ...

    # -- inbound --------------------------------------------------------------------------
    def add_inbound(self, new: NewInbound) -> Added: ...

    def find_inbound_by_hub_id(self, hub_id: str) -> TrackedPackage | None: ...

    def remember_seal(self, use: SealUse) -> SealUse:
        """Record ``use`` unless its (receiver, digest) is known; return the first use of
        that seal by that receiver (``use`` itself when it is new) — or, when the seal was
        first seen under another sender or DocumentId by any receiver, that use (nothing is
        recorded then). Atomic across replicas."""
        ...

    def first_seal_use(self, digest: str) -> SealUse | None:
        """The first recorded use of a seal by any receiver, or None (nothing recorded)."""
        ...

    # -- both -----------------------------------------------------------------------------
    def transition(
        self,
        package_id: int,
        target: PackageState,
        *,
        event: str | None = None,
        detail: str = "",
        error: ErrorInfo | None = None,
        related_id: int | None = None,
    ) -> TrackedPackage: ...

    def add_event(self, package_id: int, event: str, detail: str = "") -> None: ...

    def get(self, package_id: int) -> TrackedPackage: ...

    def find(
        self,
        *,
        direction: Direction | None = None,
        states: Sequence[PackageState] = (),
        limit: int = 100,
    ) -> list[TrackedPackage]: ...

    def to_resume(self, direction: Direction, *, limit: int = 100) -> list[TrackedPackage]: ...

    def search(self, text: str, *, limit: int = 50) -> list[TrackedPackage]:
        """Packages whose DocumentId, record id (key) or hub id is ``text``, or whose
        CodeNumber/Notation contains it; newest first."""
        ...

    def find_matching(self, where: PackageFilter, *, limit: int = 100) -> list[TrackedPackage]:
        """Packages matching every criterion of ``where``, oldest change first."""
        ...

    def events(self, package_id: int) -> list[Event]: ...

    def recipients(self, package_id: int) -> list[Recipient]: ...

    def raw(self, package_id: int) -> bytes | None: ...

    def record(self, package_id: int) -> LocalRecord | None: ...

    # -- metrics --------------------------------------------------------------------------
    def counts(self) -> list[StateCount]: ...

    def oldest_outbox_age(self, now: float | None = None) -> float | None: ...

    def count_past_deadline(self, now: float | None = None) -> int: ...

    def recipient_backlog(self) -> list[RecipientBacklog]:
        """Recipients of outbound documents per state not yet final (PENDING, SENT ...)."""
        ...

    # -- replicas -------------------------------------------------------------------------
    def try_hold_duty(self, name: str) -> bool:
        """Whether this instance holds the singleton duty ``name`` (inbox polling of a hub
        account, resume, retention), taking it if no other replica does. Ask before each
        round; a dead holder's duty is free within seconds. SQLite: always ``True``."""
        ...

    def release_duty(self, name: str) -> None: ...

    def close(self) -> None: ...


def state_mapping(counts: Sequence[StateCount]) -> Mapping[tuple[str, str, str], int]:
    """``(direction, kind, state) → count``: a shape metrics code can iterate directly."""
    return {(c.direction.value, c.kind.value, c.state.value): c.count for c in counts}
