"""Shared fixtures and helpers of the AMQP tests (real RabbitMQ; skipped when unreachable).

Every test gets its own topology names (a unique prefix) and deletes them afterwards, so
parallel runs on one broker do not collide.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kombu
import pytest

from connector.local.amqp import AmqpLocalSide
from connector.local.amqp_settings import AmqpSettings, AmqpTopology
from connector.local.amqp_topology import declare_topology, delete_topology
from connector.metrics import ConnectorMetrics

BROKER_URL = os.environ.get("CONNECTOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

def broker(url: str = BROKER_URL, **options: Any) -> Any:
    """A kombu connection (kombu is not annotated, so it is typed as Any here)."""
    connection_class: Any = kombu.Connection  # type: ignore[attr-defined]
    return connection_class(url, **options)


def broker_reachable() -> str | None:
    """None when a broker answers, else why not."""
    try:
        with broker(connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0)
    except Exception as exc:
        return f"no RabbitMQ at {BROKER_URL}: {type(exc).__name__}: {exc}"
    return None


_UNREACHABLE = broker_reachable()
requires_broker = pytest.mark.skipif(_UNREACHABLE is not None, reason=_UNREACHABLE or "")


def unique_topology() -> Iterator[AmqpTopology]:
    """Fixture body: fresh topology names (skips without a broker), deleted afterwards."""
    if _UNREACHABLE is not None:
        pytest.skip(_UNREACHABLE)
    names = AmqpTopology.prefixed(f"test-{uuid.uuid4().hex[:10]}.")
    with broker() as conn:
        declare_topology(conn.channel(), names)  # agencies may publish before we start
    yield names
    with broker() as conn:
        delete_topology(conn.channel(), names)


def make_settings(topology: AmqpTopology, **overrides: Any) -> AmqpSettings:
    values: dict[str, Any] = {
        "url": BROKER_URL,
        "topology": topology,
        "heartbeat": 10.0,
        "connect_timeout": 5.0,
        "publish_timeout": 5.0,
        "reconnect_initial_delay": 0.2,
        "reconnect_max_delay": 1.0,
        "connection_name": f"edoc-test-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return AmqpSettings(**values)


def side_factory_for(settings: AmqpSettings) -> Iterator[Callable[..., AmqpLocalSide]]:
    """Fixture body: started adapters on the test's topology, closed afterwards."""
    sides: list[AmqpLocalSide] = []

    def make(metrics: ConnectorMetrics | None = None, **overrides: Any) -> AmqpLocalSide:
        chosen = settings if not overrides else make_settings(settings.topology, **overrides)
        side = AmqpLocalSide(chosen, metrics=metrics)
        side.start()
        sides.append(side)
        return side

    yield make
    for side in sides:
        side.close()


def publish_records(
    queue: str,
    records: list[dict[str, str]],
    *,
    priority: Callable[[int], int] = lambda i: 0,
) -> None:
    """Publish JSON records the way agency software would: plain kombu, confirmed."""
    with broker(transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for index, record in enumerate(records):
            producer.publish(
                json.dumps(record).encode(),
                routing_key=queue,
                content_type="application/json",
                headers={"x-record-id": record["id"], "x-mapping": "default"},
                priority=priority(index),
                delivery_mode=2,
                mandatory=True,
            )


def queue_depth(queue: str) -> int:
    with broker() as conn:
        _, count, _ = conn.channel().queue_declare(queue, passive=True)
        return int(count)


def get_all(queue: str | None, limit: int = 10_000) -> list[Any]:
    """Take every message from ``queue`` (acknowledged) as py-amqp messages."""
    assert queue, "no queue name"
    taken = []
    with broker() as conn:
        channel = conn.channel()
        channel.auto_decode = False
        for _ in range(limit):
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                break
            taken.append(message)
    return taken


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def rabbitmqctl_close(local_port: int, reason: str = "test") -> bool:
    """Close our connection from the broker's side; False when rabbitmqctl is unusable."""
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    listing = subprocess.run([tool, "list_connections", "-q", "pid", "peer_port"],
                             capture_output=True, text=True, timeout=30)
    if listing.returncode != 0:
        return False
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(local_port):
            closed = subprocess.run([tool, "close_connection", parts[0], reason],
                                    capture_output=True, text=True, timeout=30)
            return closed.returncode == 0
    return False


def consumer_socket(side: AmqpLocalSide) -> Any:
    """The consumer connection's socket (to cut it as a network failure would)."""
    conn = side._consumer.current_connection
    assert conn is not None, "consumer not connected"
    return conn.connection.sock
