"""Consumer queues (edoc.inbound, edoc.events.all) dead-letter what a consumer rejects into
``<dead_letter_queue>.consumers``; an older queue without that argument is used as it is."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from connector.local.amqp_settings import AmqpTopology
from connector.local.amqp_topology import (
    consumer_dead_letter_queue,
    declare_topology,
    delete_topology,
)
from tests.local.test_amqp_helpers import broker, requires_broker

pytestmark = requires_broker


@pytest.fixture
def names() -> Iterator[AmqpTopology]:
    topology = AmqpTopology.prefixed(f"test-dlx-{uuid.uuid4().hex[:10]}.")
    yield topology
    with broker() as conn:
        delete_topology(conn.channel(), topology)


@pytest.mark.parametrize("queue", ["inbound_queue", "events_queue"])
def test_a_rejected_delivery_is_dead_lettered_not_lost(names: AmqpTopology, queue: str) -> None:
    name = getattr(names, queue)
    with broker() as conn:
        channel = conn.channel()
        declare_topology(channel, names)
        exchange = names.received_exchange if queue == "inbound_queue" else names.events_exchange
        channel.basic_publish(
            channel.prepare_message(b"a document", content_type="text/plain"),
            exchange=exchange,
            routing_key="document.new",
        )
        delivered = None
        for _ in range(50):
            delivered = channel.basic_get(name)
            if delivered is not None:
                break
        assert delivered is not None
        channel.basic_reject(delivered.delivery_tag, requeue=False)  # the consumer refuses it
        dead = None
        for _ in range(50):
            dead = channel.basic_get(consumer_dead_letter_queue(names), no_ack=True)
            if dead is not None:
                break
        assert dead is not None and dead.body == b"a document"
        death = dead.headers["x-death"][0]
        assert death["queue"] == name and death["reason"] == "rejected"


def test_an_older_consumer_queue_without_it_is_used_with_a_warning(
    names: AmqpTopology, caplog: pytest.LogCaptureFixture
) -> None:
    with broker() as conn:
        channel = conn.channel()
        channel.queue_declare(
            names.events_queue,
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "classic"},
        )
        with caplog.at_level(logging.WARNING):
            declare_topology(channel, names)
            declare_topology(channel, names)
        channel.queue_declare(names.events_queue, passive=True)
        channel.queue_declare(names.inbound_queue, passive=True)
    assert f"queue {names.events_queue} exists with other arguments" in caplog.text
