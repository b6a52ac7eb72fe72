"""Settings of the RabbitMQ local side: broker address, topology names, limits.

Plain frozen dataclasses with working defaults; the configuration loader maps the YAML
``local.amqp`` section onto them. The message-contract header names live here too, so
the adapter, the replay tool, the tests and the documentation use one spelling. This
module must not do I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# Headers agency software may set on the records it publishes.
H_RECORD_ID = "x-record-id"  # the local system's record id (idempotency key)
H_MAPPING = "x-mapping"  # mapping / format name; absent = the configured default
H_FORMAT = "x-format"  # accepted as an alias of x-mapping

# Headers the connector sets on dead-lettered messages (original headers are kept).
H_REASON = "x-connector-reason"  # stable reason code, e.g. secret_document
H_STAGE = "x-connector-stage"  # pipeline stage that refused it, e.g. classify
H_ERROR = "x-connector-error"  # readable message: what, where, why
H_ERROR_KIND = "x-connector-error-kind"  # permanent / transient / unavailable / configuration
H_SOURCE_QUEUE = "x-connector-source-queue"  # the queue to replay it into
H_DEAD_LETTERED_AT = "x-connector-dead-lettered-at"  # ISO 8601, UTC
H_REPLAYS = "x-connector-replays"  # how many times an operator replayed it

# Delivery accounting (poison handling), set by the connector when it re-queues a message.
H_DELIVERIES = "x-connector-deliveries"  # deliveries that ended with the connector dying
H_REDELIVERED = "x-connector-redelivered"  # in LocalRecord.headers: "true" / "false"

# Headers the daemon puts on a LocalDelivery; they choose its routing key and priority.
H_BUSINESS_TYPE = "business-doc-type"  # 0..3 (BussinessDocType) or new/revoke/update/replace
H_STATUS_CODE = "status-code"  # 01 .. 16 (status notices)
H_PRIORITY = "priority"  # 0..3: the document's urgency
H_ATTACHMENTS = "x-attachments"  # JSON list of claim-check files of a delivery

CONNECTOR_HEADER_PREFIX = "x-connector-"


@dataclass(frozen=True)
class AmqpTopology:
    """Names of the exchanges and queues the connector declares (idempotently) at start."""

    outbound_queue: str = "edoc.outbound"  # agency software publishes records here
    commands_queue: str = "edoc.commands"  # local workflow commands (status 02..16)
    quarantine_queue: str = "edoc.quarantine"  # in flight when the connector died: one at a time
    dead_letter_queue: str = "edoc.dead-letter"  # refused records, with reason headers
    received_exchange: str = "edoc.received"  # topic: documents and statuses for the local side
    inbound_queue: str | None = "edoc.inbound"  # bound to received_exchange with "#"; None: none
    events_exchange: str = "edoc.events"  # topic: outbound.sent, status.01, ...
    events_queue: str | None = "edoc.events.all"  # bound to events_exchange with "#"; None: none
    max_priority: int = 3  # x-max-priority of the priority-capable queues (urgency 0..3)

    @classmethod
    def prefixed(cls, prefix: str) -> AmqpTopology:
        """The default names with ``prefix`` prepended (test runs, several connectors)."""
        base = cls()
        return cls(
            outbound_queue=prefix + base.outbound_queue,
            commands_queue=prefix + base.commands_queue,
            quarantine_queue=prefix + base.quarantine_queue,
            dead_letter_queue=prefix + base.dead_letter_queue,
            received_exchange=prefix + base.received_exchange,
            inbound_queue=prefix + (base.inbound_queue or ""),
            events_exchange=prefix + base.events_exchange,
            events_queue=prefix + (base.events_queue or ""),
            max_priority=base.max_priority,
        )

    @property
    def intake_queues(self) -> tuple[str, str]:
        return (self.outbound_queue, self.commands_queue)

    def queues(self) -> tuple[str, ...]:
        names = [
            self.outbound_queue,
            self.commands_queue,
            self.quarantine_queue,
            self.dead_letter_queue,
            self.inbound_queue,
            self.events_queue,
        ]
        return tuple(name for name in names if name)

    def exchanges(self) -> tuple[str, ...]:
        return (self.received_exchange, self.events_exchange)


@dataclass(frozen=True)
class AmqpSettings:
    """How to reach the broker and how the adapter behaves.

    ``password`` overrides the one in ``url``; take it from the environment or a file, never
    from committed YAML. Durations are in seconds.
    """

    url: str = "amqp://guest@127.0.0.1:5672//"
    password: str | None = field(default=None, repr=False)
    topology: AmqpTopology = field(default_factory=AmqpTopology)
    prefetch: int = 32  # unacknowledged records held by the connector at most
    heartbeat: float = 30.0  # AMQP heartbeat, serviced by the adapter's own thread
    connect_timeout: float = 10.0
    publish_timeout: float = 15.0  # waiting for the broker's publisher confirm
    max_deliveries: int = 3  # deliveries ending in a connector crash before dead-lettering
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    tls_ca_file: Path | None = None  # amqps://: verify the broker against this CA bundle
    tls_cert_file: Path | None = None  # client certificate, when the broker requires one
    tls_key_file: Path | None = None
    claim_check_dir: Path | None = None  # where large inbound attachments are written
    inline_attachments_max_bytes: int = 4 * 1024 * 1024  # above: claim-check (if dir is set)
    connection_name: str = "edoc-connector"  # shown in the RabbitMQ management UI

    def __post_init__(self) -> None:
        problems = []
        if self.prefetch < 1:
            problems.append(f"prefetch must be >= 1, got {self.prefetch}")
        if self.max_deliveries < 1:
            problems.append(f"max_deliveries must be >= 1, got {self.max_deliveries}")
        if not 1 <= self.topology.max_priority <= 255:
            problems.append(f"max_priority must be 1..255, got {self.topology.max_priority}")
        if self.heartbeat < 0:
            problems.append(f"heartbeat must be >= 0 seconds, got {self.heartbeat}")
        for name in ("connect_timeout", "publish_timeout", "reconnect_initial_delay"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            problems.append("reconnect_max_delay must be >= reconnect_initial_delay")
        if problems:
            raise ValueError("invalid AMQP settings: " + "; ".join(problems))

    def with_topology(self, topology: AmqpTopology) -> AmqpSettings:
        return replace(self, topology=topology)

    @classmethod
    def from_env(cls, **overrides: object) -> AmqpSettings:
        """Defaults, with ``CONNECTOR_AMQP_URL`` / ``CONNECTOR_AMQP_PASSWORD`` if set."""
        values: dict[str, object] = {}
        if url := os.environ.get("CONNECTOR_AMQP_URL"):
            values["url"] = url
        if password := os.environ.get("CONNECTOR_AMQP_PASSWORD"):
            values["password"] = password
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
