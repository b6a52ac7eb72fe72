"""Faults in the middle of a RabbitMQ run: the broker goes away, a connector is killed.

Each test publishes a few hundred records (5 % urgent) to A's outbound queue with plain
kombu, disturbs the run while documents are flowing, and then checks what must hold after
any run:

* B's local consumer has every document under exactly one delivery id, content as sent (a
  delivery id may be published twice after a crash at the wrong moment: the documented
  contract is to deduplicate by ``message_id``; how often that happened is printed);
* the hub holds exactly one package per document and per 01, byte for byte what the
  connectors' stores kept (nothing sent twice with different content);
* A's tracking knows B's 01 for every document;
* no record was dead-lettered, and the intake queues are drained.
"""

from __future__ import annotations

import collections
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e import checks
from tests.e2e.harness import A_ID, B_ID
from tests.e2e_amqp.harness import (
    AmqpWorld,
    Collector,
    Received,
    Record,
    RecordFactory,
    assert_received_exactly,
    close_connections,
    documents_at_b,
    duplicates,
    queue_depth,
    rabbitmqctl,
    restart_broker_app,
    signed_main_pdf,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(900)]

RECORDS = int(os.environ.get("CONNECTOR_E2E_AMQP_FAULT_RECORDS", "300"))


def _records(world: AmqpWorld) -> list[Record]:
    factory = RecordFactory(world.run, signed_main_pdf(world.signer))
    return [factory.make(i, 2 if i % 20 == 7 else 0) for i in range(RECORDS)]


@dataclass
class Local:
    """What the agencies' own software receives."""

    b_inbound: Collector  # B: documents
    a_inbound: Collector  # A: status notices (01 from B)
    a_events: Collector  # A: delivery events


def _start(world: AmqpWorld) -> tuple[list[Record], Local]:
    world.start_hub()
    records = _records(world)
    local = Local(
        world.collect(world.topology["B"].inbound_queue),
        world.collect(world.topology["A"].inbound_queue),
        world.collect(world.topology["A"].events_queue),
    )
    world.start()
    with world.producer() as producer:
        producer.publish_all(records)
    return records, local


def _at_b(b_inbound: Collector) -> Callable[[], int]:
    return lambda: len(documents_at_b(b_inbound.snapshot()))


def _wait_at_b(world: AmqpWorld, b_inbound: Collector, count: int, timeout: float = 300) -> None:
    world.wait(
        f"{count} documents at B's local consumer",
        lambda: _at_b(b_inbound)() >= count,
        timeout=timeout,
        interval=0.3,
    )


def _counter(world: AmqpWorld, agency: str, name: str) -> float:
    for family in text_string_to_metric_families(world.metrics(agency)):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"{name} not exposed by {agency}")


def _assert_nothing_lost_or_duplicated(
    world: AmqpWorld, records: list[Record], local: Local
) -> None:
    _wait_at_b(world, local.b_inbound, len(records), timeout=600)
    checks.wait_arrived(world.world, len(records), timeout=300)
    received = local.b_inbound.snapshot()
    assert_received_exactly(records, received)
    assert all(m.routing_key == "document.new" for m in received)
    # A's software gets B's 01 for every document, once per delivery id.
    expected = collections.Counter(r.document_id for r in records)
    world.wait(
        "every 01 at A's local consumer",
        lambda: len({m.message_id for m in local.a_inbound.snapshot()}) >= len(records),
        timeout=120,
    )
    notices = {m.message_id: m for m in local.a_inbound.snapshot()}.values()
    assert all(m.routing_key == "status.01" for m in notices)
    assert collections.Counter(m.headers.get("document-id") for m in notices) == expected
    hub = world.world
    edocs = collections.Counter(p.document_id for p in hub.hub_packages(A_ID, "edoc"))
    assert edocs == expected, "the hub does not hold exactly one package per document"
    arrived = collections.Counter(p.document_id for p in hub.hub_packages(B_ID, "status"))
    assert arrived == expected, "the hub does not hold exactly one 01 per document"
    checks.assert_hub_holds_what_was_stored(hub, world.a)
    checks.assert_hub_holds_what_was_stored(hub, world.b)
    for agency in ("A", "B"):
        topology = world.topology[agency]
        for queue in (topology.outbound_queue, topology.commands_queue):
            world.wait(f"{queue} drained", functools.partial(_empty, queue), timeout=60)
        assert queue_depth(topology.dead_letter_queue) == 0, f"{agency} dead-lettered records"
    # Events are best-effort (the store and the received exchange hold the truth): say what
    # the events exchange missed or repeated, for the record.
    events = local.a_events.snapshot()
    sent = collections.Counter(
        e.json()["local_id"] for e in events if e.routing_key == "outbound.sent"
    )
    ones = collections.Counter(
        e.json()["document_id"] for e in events if e.routing_key == "status.01"
    )
    print(
        f"\nB's consumer: {len(received)} messages for {len(records)} documents "
        f"({_repeats(received)} delivery ids published twice, deduplicated by message_id); "
        f"A's consumer: {len(local.a_inbound.snapshot())} status messages "
        f"({_repeats(local.a_inbound.snapshot())} twice); A's events: outbound.sent for "
        f"{len(sent)}/{len(records)} records, status.01 for {len(ones)}/{len(records)}"
    )


def _empty(queue: str) -> bool:
    return queue_depth(queue) == 0


def _repeats(received: list[Received]) -> int:
    repeated = duplicates(received)
    return sum(repeated.values()) - len(repeated)


def test_broker_restart_mid_run_loses_and_duplicates_nothing(amqp_world: AmqpWorld) -> None:
    if rabbitmqctl() is None:
        pytest.skip("needs rabbitmqctl for the test broker to close connections and restart it")
    world = amqp_world
    records, local = _start(world)
    b_inbound = local.b_inbound
    _wait_at_b(world, b_inbound, RECORDS // 4)
    # First every connection of both connectors is closed by the broker (as on a failover
    # or a network cut), then the broker application itself restarts.
    closed = close_connections(world.connection_name("A")) + close_connections(
        world.connection_name("B")
    )
    assert closed >= 3, f"only {closed} connector connections found to close"
    at_close = _at_b(b_inbound)()
    _wait_at_b(world, b_inbound, at_close + RECORDS // 4)
    at_restart = _at_b(b_inbound)()
    restart_broker_app(down_seconds=3.0)
    print(f"\nconnections closed at {at_close} documents at B, broker restarted at {at_restart}")
    _assert_nothing_lost_or_duplicated(world, records, local)
    assert at_restart < RECORDS, "the run finished before the broker restart: nothing tested"
    for agency in ("A", "B"):
        assert _counter(world, agency, "connector_broker_reconnects_total") >= 2, agency


def test_sigkill_mid_run_and_restart_loses_and_duplicates_nothing(
    amqp_world: AmqpWorld,
) -> None:
    world = amqp_world
    records, local = _start(world)
    b_inbound = local.b_inbound
    # 1. A killed from outside at a random moment of its work, restarted at once.
    _wait_at_b(world, b_inbound, RECORDS // 5)
    world.a.kill()
    world.a.start()
    # 2. A restarted with a fault armed: it kills itself right after storing a package,
    #    before acknowledging the record to the broker (the record comes back: not twice).
    _wait_at_b(world, b_inbound, 2 * RECORDS // 5)
    world.a.kill()
    world.a.start(fault="after_store_ready:kill:5")
    assert world.a.wait_exit(120) == -9
    world.a.start()
    # 3. B killed right after publishing a document to its local side, before its store knew:
    #    the document is published again under the same delivery id.
    world.b.kill()
    world.b.start(fault="after_deliver:kill:5")
    assert world.b.wait_exit(120) == -9
    world.b.start()
    # 4. B killed from outside at a random moment.
    _wait_at_b(world, b_inbound, 3 * RECORDS // 5)
    world.b.kill()
    time.sleep(0.5)
    world.b.start()
    _assert_nothing_lost_or_duplicated(world, records, local)
    # The records A held when it died went through the quarantine (and still all arrived).
    assert _counter(world, "A", "connector_broker_quarantined_total") >= 1
