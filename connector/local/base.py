"""The contract between the daemon and the agency's local side.

Two small protocols, like an HTTP transport: ``Intake`` hands the daemon records and
workflow commands published by agency software; ``Sink`` hands the agency what the
connector received (documents, status notices) and delivery events. Retries, metrics,
logging and settlement are written once in the daemon around these; adapters only move
bytes and translate their library's exceptions into ``connector.errors`` kinds
(``UnavailableError`` when the broker/folder is unreachable).

Settlement rule: the daemon calls ``IntakeItem.ack()`` only after the tracking store has
committed the record; ``dead_letter`` puts the record where an operator can see and replay
it, with the reason. ``Sink.deliver`` returns only once the hand-off is durable (file
fsynced and renamed, or broker publisher-confirm) and is idempotent by ``delivery_id``.
This module defines types only; it must not do I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from connector.errors import ConnectorError


@dataclass(frozen=True)
class RecordLimits:
    """Bounds on what agency software hands the connector, enforced while reading.

    ``max_record_bytes``: one record (spool file, AMQP message body); ``max_file_bytes``:
    one claim-check file or inline file; ``max_attachments``: files in one record;
    ``max_text_chars``: one text value of a record (an XML text node, a JSON string outside
    inline file data). Defaults are generous for real documents and small against memory.
    """

    max_record_bytes: int = 8 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    max_attachments: int = 100
    max_text_chars: int = 100_000


class RecordKind(enum.Enum):
    RECORD = "record"  # a document record to send (outbound)
    COMMAND = "command"  # a local workflow event: status 02/03/04/05/06/13/15/16 to send


@dataclass(frozen=True)
class LocalRecord:
    """One message from agency software, as bytes plus the metadata needed to route it."""

    record_id: str  # the local system's id: the outbound idempotency key
    body: bytes = field(repr=False)
    content_type: str  # application/json or application/xml
    mapping: str | None = None  # mapping/format name; None = the configured default
    kind: RecordKind = RecordKind.RECORD
    priority: int = 0  # 0..3 hint from the transport (AMQP priority); the mapped urgency wins
    source: str = ""  # where it came from, for error messages (file path, queue + tag)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Set by the adapter when the record cannot be read at all (too large, not a regular
    # file, an unknown content encoding, empty): the daemon refuses it with this error
    # without storing or mapping it.
    refusal: ConnectorError | None = None


class IntakeItem(Protocol):
    @property
    def record(self) -> LocalRecord: ...

    def ack(self) -> None:
        """The record is durably in the store: remove it from the local side."""

    def dead_letter(self, error: ConnectorError) -> None:
        """Refuse the record for good, keeping it (with the reason) for an operator."""

    def release(self) -> None:
        """Give the record back untouched (shutdown, dependency down): it will come again."""


class Intake(Protocol):
    def fetch(self, max_items: int, timeout: float) -> Sequence[IntakeItem]:
        """Up to ``max_items`` records, waiting at most ``timeout`` seconds for the first."""


class DeliveryKind(enum.Enum):
    DOCUMENT = "document"  # an edoc (new, revoke, update, replace)
    STATUS = "status"  # a status notice received from a peer


@dataclass(frozen=True)
class LocalDelivery:
    """Something received from the interconnect, mapped to the local format."""

    delivery_id: str  # stable: the inbound idempotency key
    kind: DeliveryKind
    body: bytes = field(repr=False)  # the local record (JSON or XML per the mapping)
    content_type: str
    attachments: Sequence[tuple[str, bytes]] = ()  # (file name, bytes): written beside it
    headers: Mapping[str, str] = field(default_factory=dict)


# Delivery headers carrying the receive-level warnings of a package (departures from QCVN
# 102 it was accepted with): how many, and the first ones as a JSON list of readable lines.
H_DEVIATION_COUNT = "deviation-count"
H_DEVIATIONS = "deviations"
MAX_DEVIATIONS_CARRIED = 20


def with_deviations(delivery: LocalDelivery, warnings: Sequence[str]) -> LocalDelivery:
    """The delivery with its package's warnings in its headers (bounded: a header is small)."""
    if not warnings:
        return delivery
    import json
    from dataclasses import replace

    shown = [w[:300] for w in warnings[:MAX_DEVIATIONS_CARRIED]]
    headers = {
        **delivery.headers,
        H_DEVIATION_COUNT: str(len(warnings)),
        H_DEVIATIONS: json.dumps(shown, ensure_ascii=False),
    }
    return replace(delivery, headers=headers)


# The hub's own id of a received package: stable across restarts, stores and replicas (a
# store counter is not), so it is what a local system deduplicates by.
H_HUB_ID = "hub-id"
H_ORGANISATION = "organ-id"  # serving several organisations: the one it is delivered to


def dedupe_key(delivery: LocalDelivery) -> str:
    """The key a local system deduplicates a delivery by: the hub id (per organisation of
    ours when one package is delivered to several), else the delivery id."""
    hub_id = delivery.headers.get(H_HUB_ID)
    if not hub_id:
        return delivery.delivery_id
    organ = delivery.headers.get(H_ORGANISATION)
    return f"{hub_id}@{organ}" if organ else hub_id


@dataclass(frozen=True)
class LocalEvent:
    """A delivery event for the local system (``outbound.sent``, ``status.01`` ...)."""

    routing_key: str  # e.g. outbound.accepted, outbound.sent, outbound.failed, status.01
    body: Mapping[str, object]  # JSON-serialisable; never contains document content
    event_id: str = ""


class Sink(Protocol):
    def deliver(self, delivery: LocalDelivery) -> None:
        """Durably hand a received item to the local system (idempotent by delivery_id)."""

    def emit(self, event: LocalEvent) -> None:
        """Publish a delivery event (durable, best effort ordering)."""
