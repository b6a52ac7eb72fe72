"""The RabbitMQ local side: ``Intake`` and ``Sink`` of ``connector.local.base`` over AMQP.

``AmqpLocalSide`` ties together a consumer thread (``amqp_consumer``: owns the consuming
connection, heartbeats and acks) and a confirming publisher (``amqp_publisher``: a second
connection). Records published by agency software on the outbound and commands queues
come out of ``fetch`` urgent first; ``IntakeItem.ack`` is marshalled to the consumer
thread; ``dead_letter`` publishes the untouched message, with reason headers, to the
dead-letter queue (confirmed) before acknowledging it; received documents and delivery
events go to topic exchanges with confirms and ``mandatory``.

Poison handling: a record that arrives redelivered while no connection loss of this
process explains it was in flight when a connector died. It is not handed out again
directly: a copy with the crash count in ``x-connector-deliveries`` is published to the
quarantine queue (consumed one message at a time, so a further crash can only be blamed
on it) and the original acknowledged. At ``max_deliveries`` crashes it is dead-lettered
with reason ``delivery_limit``. On ``close`` the records still buffered are handed back as
fresh copies, so an orderly restart counts against nobody.

Settlement is at-least-once: a record may be handed out again after a connection loss
(``redelivered``); the daemon's store is idempotent by record id. This module must not
know about mapping, packaging or the store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    UnavailableError,
)
from connector.local.amqp_attachments import pack
from connector.local.amqp_consumer import Delivery, IntakeConsumer
from connector.local.amqp_message import (
    crash_count,
    delivery_priority,
    delivery_routing_key,
    normalise_content_type,
    origin_queue,
    to_local_record,
)
from connector.local.amqp_publisher import ConfirmingPublisher, OutgoingMessage
from connector.local.amqp_settings import (
    H_DEAD_LETTERED_AT,
    H_DELIVERIES,
    H_ERROR,
    H_ERROR_KIND,
    H_REASON,
    H_RECORD_ID,
    H_SOURCE_QUEUE,
    H_STAGE,
    AmqpSettings,
)
from connector.local.base import (
    IntakeItem,
    LocalDelivery,
    LocalEvent,
    LocalRecord,
    RecordLimits,
    dedupe_key,
)
from connector.local.spool_files import item_fault
from connector.metrics import ConnectorMetrics

log = logging.getLogger(__name__)

__all__ = ["AmqpIntakeItem", "AmqpLocalSide", "delivery_routing_key", "normalise_content_type"]

ERROR_HEADER_MAX = 1000  # characters of the readable message kept in x-connector-error
# Properties copied onto re-published copies; user_id must match the publishing
# connection and expiration would let a dead letter vanish, so neither is kept.
_KEPT_PROPERTIES = ("content_encoding", "correlation_id", "reply_to", "timestamp", "type",
                    "app_id")


class AmqpIntakeItem:
    """One record handed to the daemon; settle it exactly once (ack, dead_letter, release)."""

    def __init__(self, side: AmqpLocalSide, delivery: Delivery, record: LocalRecord) -> None:
        self._side = side
        self._delivery = delivery
        self._record = record
        self._settled = threading.Lock()

    @property
    def record(self) -> LocalRecord:
        return self._record

    @property
    def redelivered(self) -> bool:
        """The broker or a connector crash delivered it before: it may already be stored."""
        return self._delivery.redelivered or self.delivery_count > 1

    @property
    def delivery_count(self) -> int:
        """1 for a first delivery; 1 + the crashes counted against it otherwise."""
        return crash_count(self._delivery) + 1

    def ack(self) -> None:
        self._claim("ack")
        self._side._consumer.ack(self._delivery)

    def dead_letter(self, error: ConnectorError) -> None:
        self._claim("dead_letter")
        try:
            self._side._dead_letter(self._delivery, error)
        except ConnectorError:
            self._settled.release()  # still ours: the daemon may release() it
            raise

    def release(self) -> None:
        self._claim("release")
        self._side._release(self._delivery)

    def _claim(self, action: str) -> None:
        if not self._settled.acquire(blocking=False):
            raise RuntimeError(f"{action}: record {self._record.record_id} is already settled")


class AmqpLocalSide:
    """Intake (records, commands) and Sink (documents, events) over one RabbitMQ broker."""

    def __init__(self, settings: AmqpSettings, *, metrics: ConnectorMetrics | None = None,
                 limits: RecordLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits or RecordLimits()
        self._metrics = metrics
        self._closing = False
        self._publisher = ConfirmingPublisher(settings, on_failure=self._publish_failed)
        self._consumer = IntakeConsumer(
            settings, on_connected=self._connected, on_lost=self._lost
        )

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, wait: float | None = None) -> None:
        """Start consuming. A configuration problem (credentials, topology arguments) raises
        ConfigurationError; an unreachable broker is logged and retried in the background
        (``fetch`` raises UnavailableError meanwhile)."""
        self._consumer.start()
        error = self._consumer.wait_connected(self.settings.connect_timeout if wait is None
                                              else wait)
        if isinstance(error, ConfigurationError):
            self.close()
            raise error
        if error is not None:
            log.warning("RabbitMQ not reachable at start; retrying in the background: %s",
                        error.message)

    @property
    def connected(self) -> bool:
        return self._consumer.connected

    def close(self, timeout: float = 10.0) -> None:
        """Stop consuming, hand back buffered records as fresh copies, close connections.

        Records handed out and not settled by now are redelivered by the broker later (and
        count as crashes against them): settle or release in-flight items first."""
        if self._closing:
            return
        self._closing = True
        try:
            for delivery in self._consumer.cancel(timeout):
                self._hand_back(delivery)
            self._consumer.flush(timeout)
        finally:
            self._consumer.stop(timeout)
            self._publisher.close()

    def __enter__(self) -> AmqpLocalSide:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Intake --------------------------------------------------------------------------

    def fetch(self, max_items: int, timeout: float) -> Sequence[IntakeItem]:
        """Up to ``max_items`` records, urgent first, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self._consumer.take(max_items, max(0.0, deadline - time.monotonic()))
            items: list[IntakeItem] = []
            for delivery in deliveries:
                if delivery.redelivered and self._metrics is not None:
                    self._metrics.broker_redelivered()
                if delivery.suspect and self._quarantine(delivery):
                    continue
                items.append(AmqpIntakeItem(self, delivery, self._record(delivery)))
            if items or not deliveries or time.monotonic() >= deadline:
                return items

    def _record(self, delivery: Delivery) -> LocalRecord:
        return to_local_record(delivery, self.settings.topology, self.limits)

    def _origin_queue(self, delivery: Delivery) -> str:
        return origin_queue(delivery, self.settings.topology)

    def _quarantine(self, delivery: Delivery) -> bool:
        """Count a crash against a suspect; True when it no longer goes to the daemon."""
        crashes = crash_count(delivery) + 1
        headers = {**delivery.headers, H_DELIVERIES: crashes,
                   H_SOURCE_QUEUE: self._origin_queue(delivery)}
        try:
            if crashes >= self.settings.max_deliveries:
                error = PermanentError(
                    f"record was being handled {crashes} times when a connector stopped "
                    f"without settling it (limit {self.settings.max_deliveries}): it probably "
                    "crashes the connector; inspect it before replaying",
                    reason="delivery_limit", stage="intake")
                self._publish_dead_letter(delivery, error, headers)
                if self._metrics is not None:
                    self._metrics.refused_record(error.reason)
            else:
                self._publisher.publish(
                    self._copy(delivery, "", self.settings.topology.quarantine_queue, headers),
                    doing="moving a redelivered record to the quarantine queue")
                if self._metrics is not None:
                    self._metrics.broker_quarantine()
        except ConnectorError as err:
            log.warning("could not quarantine a redelivered record; handing it out as is: %s",
                        err.message)
            return False
        log.warning("record from %s was in flight when a connector stopped (%d time(s)): %s",
                    delivery.queue, crashes,
                    "dead-lettered" if crashes >= self.settings.max_deliveries else "quarantined")
        self._consumer.ack(delivery)
        return True

    def _dead_letter(self, delivery: Delivery, error: ConnectorError) -> None:
        if not self._consumer.is_current(delivery):
            # The broker redelivers it on the new connection; it is refused again then, so
            # the dead-letter queue gets it once.
            log.info("dead-letter of a record from a lost connection skipped (redelivered)")
            return
        self._publish_dead_letter(delivery, error)
        self._consumer.ack(delivery)

    def _publish_dead_letter(self, delivery: Delivery, error: ConnectorError,
                             original: Mapping[str, Any] | None = None) -> None:
        message = error.message
        if len(message) > ERROR_HEADER_MAX:
            message = message[: ERROR_HEADER_MAX - 1] + "…"
        headers = {
            **(delivery.headers if original is None else original),
            H_REASON: error.reason,
            H_STAGE: error.stage or "unknown",
            H_ERROR: message,
            H_ERROR_KIND: error.kind,
            H_SOURCE_QUEUE: self._origin_queue(delivery),
            H_DEAD_LETTERED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self._publisher.publish(
            self._copy(delivery, "", self.settings.topology.dead_letter_queue, headers),
            doing=f"dead-lettering a record ({error.reason})")

    def _release(self, delivery: Delivery) -> None:
        if self._closing:
            self._hand_back(delivery)
        else:
            self._consumer.requeue(delivery)

    def _hand_back(self, delivery: Delivery) -> None:
        """Return a record as a fresh copy (not flagged redelivered), then ack the original."""
        if delivery.suspect and self._quarantine(delivery):
            return
        if not self._consumer.is_current(delivery):
            return
        try:
            self._publisher.publish(self._copy(delivery, "", delivery.queue, delivery.headers),
                                    doing="handing back a record at shutdown")
        except ConnectorError as err:
            log.warning("could not hand back a record at shutdown; the broker redelivers it: %s",
                        err.message)
            return
        self._consumer.ack(delivery)

    @staticmethod
    def _copy(delivery: Delivery, exchange: str, routing_key: str,
              headers: Mapping[str, Any]) -> OutgoingMessage:
        properties = delivery.properties
        return OutgoingMessage(
            exchange=exchange,
            routing_key=routing_key,
            body=delivery.body,
            content_type=properties.get("content_type") or "application/octet-stream",
            headers=headers,
            message_id=properties.get("message_id"),
            priority=properties.get("priority"),
            properties={k: properties[k] for k in _KEPT_PROPERTIES
                        if properties.get(k) is not None},
        )

    # ---- Sink ----------------------------------------------------------------------------

    def deliver(self, delivery: LocalDelivery) -> None:
        """Publish a received document or status to the received exchange (confirmed)."""
        try:
            body, content_type, extra = pack(
                delivery.body, delivery.content_type, delivery.attachments,
                delivery_id=delivery.delivery_id,
                claim_check_dir=self.settings.claim_check_dir,
                inline_max_bytes=self.settings.inline_attachments_max_bytes)
        except OSError as exc:
            if item_fault(exc):  # this delivery's fault (a name, a size): not an outage
                raise PermanentError(
                    f"cannot write the attachments of {delivery.delivery_id} into the "
                    f"claim-check directory: {exc.strerror or exc}",
                    reason="delivery_unwritable", stage="deliver") from exc
            raise UnavailableError(
                f"cannot write the attachments of {delivery.delivery_id} into the claim-check "
                f"directory {self.settings.claim_check_dir}: {exc}",
                reason="claim_check_unwritable") from exc
        headers = {str(k): str(v) for k, v in delivery.headers.items()}
        headers.update(extra)
        headers["x-delivery-kind"] = delivery.kind.value
        routing_key = delivery_routing_key(delivery)
        self._publisher.publish(
            OutgoingMessage(
                exchange=self.settings.topology.received_exchange,
                routing_key=routing_key,
                body=body,
                content_type=content_type,
                headers=headers,
                message_id=dedupe_key(delivery),
                priority=delivery_priority(delivery),
                properties={"timestamp": int(time.time()), "type": routing_key},
            ),
            doing=f"delivering {delivery.kind.value} {delivery.delivery_id} as {routing_key!r}")

    def emit(self, event: LocalEvent) -> None:
        """Publish a delivery event (JSON) to the events exchange (confirmed)."""
        body = json.dumps(event.body, ensure_ascii=False, default=str).encode("utf-8")
        record_id = event_record_id(event)
        self._publisher.publish(
            OutgoingMessage(
                exchange=self.settings.topology.events_exchange,
                routing_key=event.routing_key,
                body=body,
                content_type="application/json",
                headers={"x-event": event.routing_key, H_RECORD_ID: record_id},
                message_id=event.event_id or str(uuid.uuid4()),
                properties={
                    "timestamp": int(time.time()),
                    "type": event.routing_key,
                    "correlation_id": record_id,
                },
            ),
            doing=f"emitting event {event.routing_key!r}")

    # ---- health ----------------------------------------------------------------------------

    def _connected(self) -> None:
        if self._metrics is not None:
            self._metrics.set_component_up("broker", True)

    def _lost(self, error: ConnectorError, was_connected: bool) -> None:
        if self._metrics is not None:
            self._metrics.set_component_up("broker", False)
            if was_connected:
                self._metrics.broker_reconnected()

    def _publish_failed(self, error: ConnectorError) -> None:
        if self._metrics is not None:
            self._metrics.broker_publish_failed(error.reason)


def event_record_id(event: LocalEvent) -> str:
    """What an event is about, as the agency knows it: the record id it published (outbound),
    or the delivery id (``message_id``) of what it received (inbound); the event id else."""
    body = event.body
    if body.get("local_id"):
        return str(body["local_id"])
    if body.get("direction") == "in" and body.get("package_id") is not None:
        return f"in-{body['package_id']}"
    return str(body.get("document_id") or event.event_id or "")
