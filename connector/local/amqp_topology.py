"""Declare the connector's RabbitMQ topology, idempotently.

Every connection declares the whole topology before use, so a broker restarted without
its definitions, or a queue deleted by mistake, is rebuilt on reconnect. Declaring an
existing entity with the same arguments is a no-op in AMQP; different arguments raise
``PRECONDITION_FAILED``, reported as a configuration problem. All queues are durable
classic queues (quorum queues reject ``x-max-priority``). This module must not consume
or publish.
"""

from __future__ import annotations

from typing import Any

from connector.local.amqp_settings import AmqpTopology


def priority_queue_arguments(topology: AmqpTopology) -> dict[str, Any]:
    return {"x-queue-type": "classic", "x-max-priority": topology.max_priority}


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
    if topology.inbound_queue:
        channel.queue_declare(
            topology.inbound_queue, durable=True, auto_delete=False, arguments=priority
        )
        channel.queue_bind(topology.inbound_queue, topology.received_exchange, "#")
    if topology.events_queue:
        channel.queue_declare(
            topology.events_queue,
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "classic"},
        )
        channel.queue_bind(topology.events_queue, topology.events_exchange, "#")


def delete_topology(channel: Any, topology: AmqpTopology) -> None:
    """Delete every queue and exchange of ``topology`` (tests and tear-down tools only)."""
    for queue in topology.queues():
        channel.queue_delete(queue)
    for exchange in topology.exchanges():
        channel.exchange_delete(exchange)
