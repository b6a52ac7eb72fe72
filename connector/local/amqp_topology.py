"""Declare the connector's RabbitMQ topology, idempotently.

Every connection declares the whole topology before use, so a broker restarted without
its definitions, or a queue deleted by mistake, is rebuilt on reconnect. Declaring an
existing entity with the same arguments is a no-op in AMQP; different arguments raise
``PRECONDITION_FAILED``, reported as a configuration problem. All queues are durable
classic queues (quorum queues reject ``x-max-priority``).

The queues the connector declares for consumers (``inbound_queue``, ``events_queue``) carry
a dead-letter exchange: a delivery the agency's consumer rejects (``requeue=False``) or that
expires goes, with RabbitMQ's ``x-death`` header, to ``<dead_letter_queue>.consumers``
instead of being lost. A consumer queue that already exists without it (declared by an
older version) is used as it is, with a warning: its arguments cannot change in place.
This module must not consume or publish.
"""

from __future__ import annotations

import logging
from typing import Any

import amqp.exceptions

from connector.local.amqp_settings import AmqpTopology

log = logging.getLogger(__name__)


def priority_queue_arguments(topology: AmqpTopology) -> dict[str, Any]:
    return {"x-queue-type": "classic", "x-max-priority": topology.max_priority}


def consumer_dead_letter_queue(topology: AmqpTopology) -> str:
    """Where deliveries rejected by the agency's consumers end up."""
    return f"{topology.dead_letter_queue}.consumers"


def consumer_queue_arguments(topology: AmqpTopology, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` plus the dead-letter exchange (the default one, routing by queue name)."""
    return {
        **base,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": consumer_dead_letter_queue(topology),
    }


def _declare_consumer_queue(channel: Any, name: str, arguments: dict[str, Any]) -> None:
    # A refused declaration closes its channel: try on a channel of its own.
    trial = channel.connection.channel()
    try:
        trial.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
    except amqp.exceptions.PreconditionFailed:
        log.warning(
            "queue %s exists with other arguments (no dead-letter exchange): used as it is; "
            "a delivery its consumer rejects is lost. Drain and delete it once (the connector "
            "declares it again), or set a RabbitMQ policy with dead-letter-exchange \"\" and "
            "dead-letter-routing-key %s",
            name,
            arguments["x-dead-letter-routing-key"],
        )
        channel.queue_declare(name, passive=True)
        return
    finally:
        if getattr(trial, "is_open", False):
            trial.close()


def declare_topology(channel: Any, topology: AmqpTopology) -> None:
    """Declare exchanges, queues and default bindings on an open py-amqp channel."""
    for exchange in topology.exchanges():
        channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    priority = priority_queue_arguments(topology)
    for queue in (topology.outbound_queue, topology.commands_queue, topology.quarantine_queue):
        channel.queue_declare(queue, durable=True, auto_delete=False, arguments=priority)
    channel.queue_declare(
        topology.dead_letter_queue,
        durable=True,
        auto_delete=False,
        arguments={"x-queue-type": "classic"},
    )
    if topology.inbound_queue or topology.events_queue:
        channel.queue_declare(
            consumer_dead_letter_queue(topology),
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "classic"},
        )
    if topology.inbound_queue:
        _declare_consumer_queue(
            channel, topology.inbound_queue, consumer_queue_arguments(topology, priority)
        )
        channel.queue_bind(topology.inbound_queue, topology.received_exchange, "#")
    if topology.events_queue:
        _declare_consumer_queue(
            channel,
            topology.events_queue,
            consumer_queue_arguments(topology, {"x-queue-type": "classic"}),
        )
        channel.queue_bind(topology.events_queue, topology.events_exchange, "#")


def delete_topology(channel: Any, topology: AmqpTopology) -> None:
    """Delete every queue and exchange of ``topology`` (tests and tear-down tools only)."""
    for queue in (*topology.queues(), consumer_dead_letter_queue(topology)):
        channel.queue_delete(queue)
    for exchange in topology.exchanges():
        channel.exchange_delete(exchange)
