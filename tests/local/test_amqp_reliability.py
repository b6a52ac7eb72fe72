"""The AMQP local side when things break: lost connections, busy CPUs, crashing consumers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import amqp.exceptions
import pytest

from connector.errors import PermanentError
from connector.local.amqp import AmqpIntakeItem, AmqpLocalSide
from connector.local.amqp_settings import H_DELIVERIES, H_REASON, AmqpSettings, AmqpTopology
from connector.local.base import LocalEvent
from connector.metrics import ConnectorMetrics
from tests.local.test_amqp_helpers import (
    BROKER_URL,
    broker,
    consumer_socket,
    get_all,
    make_settings,
    publish_records,
    queue_depth,
    rabbitmqctl_close,
    side_factory_for,
    unique_topology,
    wait_until,
)

pytestmark = pytest.mark.broker

SideFactory = Callable[..., AmqpLocalSide]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def topology() -> Iterator[AmqpTopology]:
    yield from unique_topology()


@pytest.fixture
def settings(topology: AmqpTopology) -> AmqpSettings:
    return make_settings(topology)


@pytest.fixture
def side_factory(settings: AmqpSettings) -> Iterator[SideFactory]:
    yield from side_factory_for(settings)


def records(count: int, prefix: str = "rec") -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{i:04d}"} for i in range(count)]


def consume(side: AmqpLocalSide, expected: set[str], *, timeout: float = 30.0,
            hold: int = 0, on_held: Callable[[], None] | None = None) -> Counter[str]:
    """Ack records until every expected id was acked once; returns how often each came.

    After ``hold`` records, the next unacknowledged ones are kept and ``on_held`` runs (the
    failure under test); the held items are acknowledged afterwards, as a slow daemon would.
    """
    seen: Counter[str] = Counter()
    acked: set[str] = set()
    held: list[AmqpIntakeItem] = []
    deadline = time.monotonic() + timeout
    while acked != expected:
        assert time.monotonic() < deadline, f"{len(expected - acked)} records never arrived"
        for item in side.fetch(50, 0.2):
            assert isinstance(item, AmqpIntakeItem)
            record_id = item.record.record_id
            seen[record_id] += 1
            if seen[record_id] > 1:
                assert item.redelivered, f"{record_id} came twice without the redelivered flag"
            if on_held is not None and len(acked) >= hold and len(held) < 10:
                held.append(item)
                if len(held) == 10:
                    on_held()
                    for stale in held:
                        stale.ack()  # void: its connection is gone; the broker redelivers
                    on_held = None
                continue
            item.ack()
            acked.add(record_id)
    return seen


def test_cut_connection_during_consumption_loses_and_duplicates_nothing(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    expected = records(1000)
    publish_records(topology.outbound_queue, expected, priority=lambda i: 2 if i % 20 == 0 else 0)
    metrics = ConnectorMetrics(process_metrics=False)
    side = side_factory(metrics=metrics, prefetch=50)

    def cut() -> None:
        old = consumer_socket(side)
        old.shutdown(socket.SHUT_RDWR)  # as a dropped network link would
        wait_until(lambda: side.connected and side._consumer.current_connection is not None
                   and consumer_socket(side) is not old, 10, "the reconnection")

    seen = consume(side, {str(r["id"]) for r in expected}, hold=400, on_held=cut)
    side.close()
    assert queue_depth(topology.outbound_queue) == 0
    assert queue_depth(topology.quarantine_queue) == 0  # a lost link is nobody's crash
    assert queue_depth(topology.dead_letter_queue) == 0
    duplicates = [record_id for record_id, count in seen.items() if count > 1]
    assert len(duplicates) >= 10  # the held ones, at least, came again (flagged)
    assert metrics.broker_reconnects._value.get() == 1
    assert metrics.components() == {"broker": True}


def test_broker_closing_the_connection_is_survived(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    expected = records(100)
    publish_records(topology.outbound_queue, expected)
    side = side_factory(prefetch=20)

    def close_from_broker() -> None:
        old = consumer_socket(side)
        if not rabbitmqctl_close(old.getsockname()[1], "edoc-connector test"):
            pytest.skip("rabbitmqctl cannot close connections here (not installed or no rights)")
        wait_until(lambda: side.connected and consumer_socket(side) is not old, 15,
                   "the reconnection")

    consume(side, {str(r["id"]) for r in expected}, hold=30, on_held=close_from_broker)
    side.close()
    assert queue_depth(topology.outbound_queue) == 0
    assert queue_depth(topology.quarantine_queue) == 0


def test_dead_letter_after_a_lost_connection_happens_once(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    publish_records(topology.outbound_queue, records(1, "bad"))
    side = side_factory()
    [stale] = side.fetch(1, 5)
    old = consumer_socket(side)
    old.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: side.connected and consumer_socket(side) is not old, 10, "reconnection")
    refusal = PermanentError("unknown mapping 'nope'", reason="unknown_mapping", stage="map")
    stale.dead_letter(refusal)  # skipped: the broker redelivers it on the new connection
    [again] = side.fetch(1, 5)
    assert again.record.record_id == "bad-0000" and isinstance(again, AmqpIntakeItem)
    assert again.redelivered and again.delivery_count == 1
    again.dead_letter(refusal)
    side.close()
    [letter] = get_all(topology.dead_letter_queue)
    assert letter.properties["application_headers"][H_REASON] == "unknown_mapping"
    assert queue_depth(topology.outbound_queue) == 0


def test_heartbeats_are_serviced_while_the_cpu_is_busy(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    publish_records(topology.outbound_queue, records(5))
    metrics = ConnectorMetrics(process_metrics=False)
    side = side_factory(metrics=metrics, heartbeat=1.0)
    items = list(side.fetch(5, 5))
    side.emit(LocalEvent("outbound.accepted", {"n": 5}))
    publisher_connection = side._publisher._conn
    # Control: a connection nobody services is closed by the broker in the same window.
    neglected = broker(heartbeat=1.0)
    neglected.connect()

    started = time.monotonic()
    total = 0
    while time.monotonic() - started < 5.0:  # CPU-bound work holding the GIL in slices
        total += sum(i * i for i in range(10_000))

    for item in items:
        item.ack()
    side.emit(LocalEvent("outbound.sent", {"n": 5}))
    assert side._publisher._conn is publisher_connection  # no reconnect was needed
    assert metrics.broker_reconnects._value.get() == 0
    side.close()
    assert queue_depth(topology.outbound_queue) == 0
    with pytest.raises((OSError, amqp.exceptions.ConnectionError)):  # reset by the broker
        for _ in range(3):
            neglected.drain_events(timeout=1.0)
            neglected.heartbeat_check()
    neglected.collect()


CRASHING_CONSUMER = textwrap.dedent("""
    import os, sys
    from connector.local.amqp import AmqpLocalSide
    from connector.local.amqp_settings import AmqpSettings, AmqpTopology
    settings = AmqpSettings(url=sys.argv[1], topology=AmqpTopology.prefixed(sys.argv[2]),
                            max_deliveries=3, prefetch=10)
    side = AmqpLocalSide(settings)
    side.start()
    while True:
        items = side.fetch(10, 1.5)
        if not items:
            side.close()
            sys.exit(0)
        for item in items:
            if item.record.record_id.startswith("poison"):
                os._exit(70)  # the connector dies while handling it (say, a native crash)
            item.ack()
""")


def test_a_record_that_keeps_crashing_the_connector_ends_in_the_dead_letter_queue(
    topology: AmqpTopology,
) -> None:
    prefix = topology.outbound_queue.removesuffix("edoc.outbound")
    publish_records(topology.outbound_queue, records(1, "poison") + records(5, "innocent"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    exits = []
    for _ in range(6):
        run = subprocess.run([sys.executable, "-c", CRASHING_CONSUMER, BROKER_URL, prefix],
                             env=env, capture_output=True, text=True, timeout=60)
        exits.append(run.returncode)
        if run.returncode == 0:
            break
        assert run.returncode == 70, run.stderr[-2000:]
    assert exits == [70, 70, 70, 0]  # crashed max_deliveries times, then stopped looping
    [letter] = get_all(topology.dead_letter_queue)
    headers = letter.properties["application_headers"]
    assert headers["x-record-id"] == "poison-0000"
    assert headers[H_REASON] == "delivery_limit" and headers[H_DELIVERIES] == 3
    assert queue_depth(topology.outbound_queue) == 0
    assert queue_depth(topology.quarantine_queue) == 0  # the innocent ones were all acked


KILLED_CONSUMER = textwrap.dedent("""
    import os, signal, sys
    from connector.local.amqp import AmqpLocalSide
    from connector.local.amqp_settings import AmqpSettings, AmqpTopology
    settings = AmqpSettings(url=sys.argv[1], topology=AmqpTopology.prefixed(sys.argv[2]),
                            prefetch=20)
    side = AmqpLocalSide(settings)
    side.start()
    kill_after = int(sys.argv[3])
    done = 0
    while True:
        items = side.fetch(10, 1.5)
        if not items:
            side.close()
            sys.exit(0)
        for item in items:
            item.ack()
            print(item.record.record_id, item.redelivered, flush=True)
            done += 1
            if done == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
""")


def test_sigkill_mid_run_and_restart_loses_nothing(topology: AmqpTopology) -> None:
    prefix = topology.outbound_queue.removesuffix("edoc.outbound")
    expected = {str(r["id"]) for r in records(400)}
    publish_records(topology.outbound_queue, records(400))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seen: Counter[str] = Counter()
    for kill_after in ("150", "0"):
        run = subprocess.run(
            [sys.executable, "-c", KILLED_CONSUMER, BROKER_URL, prefix, kill_after],
            env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == (-9 if kill_after != "0" else 0), run.stderr[-2000:]
        for line in run.stdout.splitlines():
            record_id, redelivered = line.split()
            if seen[record_id]:
                assert redelivered == "True", f"{record_id} came twice, unflagged"
            seen[record_id] += 1
    assert set(seen) == expected  # nothing lost
    twice = [record_id for record_id, count in seen.items() if count > 1]
    assert len(twice) <= 20  # at most the prefetch window; the store absorbs them
    assert queue_depth(topology.outbound_queue) == 0
    assert queue_depth(topology.quarantine_queue) == 0
    assert queue_depth(topology.dead_letter_queue) == 0
