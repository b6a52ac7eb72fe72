"""Hostile input on the AMQP entry point: what a careless or hostile producer publishes.

Families: every content_encoding a producer may set (kombu's default ``binary`` for bytes,
charsets, compressions, garbage) with empty and non-empty bodies; body sizes at the limit;
headers of every AMQP type. Invariants: building the record never raises (a raise in the
consumer thread used to end the session and loop on the redelivery); a message the connector
cannot read carries its refusal with a reason code and no body; on a real broker such a
message is consumed, the consumer stays connected and the good message behind it arrives.
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connector.local.amqp import AmqpLocalSide
from connector.local.amqp_consumer import MAIN, Delivery, IntakeConsumer
from connector.local.amqp_message import IDENTITY_ENCODINGS, to_local_record
from connector.local.amqp_replay import list_dead_letters, replay_dead_letters
from connector.local.amqp_settings import AmqpSettings, AmqpTopology
from connector.local.base import RecordLimits
from tests.local.test_amqp_helpers import broker, make_settings, unique_topology

pytestmark = pytest.mark.timeout(120)

LIMIT = 2048
TOPOLOGY = AmqpTopology()
ENCODINGS: list[str | None] = [None, "", "binary", "BINARY", "utf-8", "UTF8", "identity",
                               "gzip", "deflate", "base64", "utf-16", "latin-1", "x-unknown",
                               "b" * 500, "\x00", "ütf-8"]
BODIES = {"empty": b"", "json": b'{"id": "r-1"}', "garbage": b"\xff\xfe\x00 garbage"}


def _delivery(body: Any, encoding: str | None = None, **properties: Any) -> Delivery:
    props = dict(properties)
    if encoding is not None:
        props["content_encoding"] = encoding
    return Delivery(generation=1, channel=MAIN, delivery_tag=1,
                    queue=TOPOLOGY.outbound_queue, body=body, properties=props,
                    redelivered=False)


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("encoding", ENCODINGS, ids=range(len(ENCODINGS)))
def test_every_encoding_and_body_gives_a_record_or_a_refusal(
        encoding: str | None, body: str) -> None:
    record = to_local_record(_delivery(BODIES[body], encoding), TOPOLOGY,
                             RecordLimits(max_record_bytes=LIMIT))
    known = (encoding or "").strip().lower() in IDENTITY_ENCODINGS
    if not known:
        assert record.refusal is not None
        assert record.refusal.reason == "content_encoding_unsupported"
        assert len(record.refusal.message) < 200  # a long encoding is not echoed whole
    elif body == "empty":
        assert record.refusal is not None and record.refusal.reason == "record_empty"
    else:
        assert record.refusal is None and record.body == BODIES[body]
    if record.refusal is not None:
        assert record.body == b"" and record.refusal.stage == "intake"
    assert record.record_id  # always an id, for the dead letter and the event


@pytest.mark.parametrize("size", [1, LIMIT - 1, LIMIT, LIMIT + 1, 4 * LIMIT])
def test_body_size_at_and_around_the_limit(size: int) -> None:
    record = to_local_record(_delivery(b"{" * size, "binary"), TOPOLOGY,
                             RecordLimits(max_record_bytes=LIMIT))
    if size > LIMIT:
        assert record.refusal is not None and record.refusal.reason == "record_too_large"
    else:
        assert record.refusal is None and len(record.body) == size


HEADER_VALUES: list[Any] = [None, b"\xff\xfe", "x" * 100_000, 12, 1.5, True,
                            decimal.Decimal("1.10"), dt.datetime(2026, 1, 1), [1, [2, {"a": b"b"}]],
                            {"nested": {"deeper": [None]}}, "\u202eevil", "\x00"]


@pytest.mark.parametrize("value", HEADER_VALUES, ids=range(len(HEADER_VALUES)))
def test_header_values_of_every_type_never_break_intake(value: Any) -> None:
    headers = {"x-record-id": value, "x-mapping": value, "priority": value, "other": value}
    record = to_local_record(
        _delivery(b"{}", "binary", application_headers=headers, priority=value,
                  message_id=value, content_type=value), TOPOLOGY)
    assert isinstance(record.record_id, str) and record.record_id
    assert 0 <= record.priority <= 3


class _Message:
    """What py-amqp hands the consumer callback (body ``''`` when no body frame came)."""

    def __init__(self, body: Any, properties: dict[str, Any]) -> None:
        self.body = body
        self.properties = properties
        self.delivery_info = {"delivery_tag": 7, "redelivered": False}


@pytest.mark.parametrize("encoding", ENCODINGS, ids=range(len(ENCODINGS)))
@pytest.mark.parametrize("body", ["", "text", b"", b"bytes"])
def test_the_consumer_callback_never_raises(encoding: str | None, body: Any) -> None:
    consumer = IntakeConsumer(make_settings(TOPOLOGY))
    try:
        properties = {} if encoding is None else {"content_encoding": encoding}
        consumer._on_message(1, MAIN, TOPOLOGY.outbound_queue, _Message(body, properties))
        [delivery] = consumer.take(1, 0)
        assert isinstance(delivery.body, bytes)
    finally:
        consumer.stop(1)


# ---------------------------------------------------------------------------- real broker
@pytest.fixture
def topology() -> Iterator[AmqpTopology]:
    yield from unique_topology()


def _publish_raw(queue: str, body: bytes, **options: Any) -> None:
    with broker(transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, routing_key=queue, delivery_mode=2, **options)


@pytest.mark.broker
def test_on_a_broker_poison_messages_are_refused_and_the_consumer_lives(
        topology: AmqpTopology) -> None:
    settings: AmqpSettings = make_settings(topology)
    side = AmqpLocalSide(settings, limits=RecordLimits(max_record_bytes=LIMIT))
    side.start()
    try:
        queue = topology.outbound_queue
        # kombu's defaults for a bytes body: content_type application/data, encoding binary.
        _publish_raw(queue, b"", headers={"x-record-id": "empty"})
        _publish_raw(queue, b"", content_encoding="binary", content_type="application/data",
                     headers={"x-record-id": "empty-binary"})
        _publish_raw(queue, b'{"id": 1}', content_encoding="gzip",
                     content_type="application/json", headers={"x-record-id": "gzip"})
        _publish_raw(queue, b"{" * (LIMIT + 1), content_encoding="binary",
                     content_type="application/json", headers={"x-record-id": "oversize"})
        _publish_raw(queue, b'{"id": "good"}', content_encoding="binary",
                     content_type="application/json", headers={"x-record-id": "good"})
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while len(seen) < 5 and time.monotonic() < deadline:
            for item in side.fetch(10, 0.5):
                seen[item.record.record_id] = item
        assert side.connected
        expected = {"empty": "record_empty", "empty-binary": "record_empty",
                    "gzip": "content_encoding_unsupported", "oversize": "record_too_large",
                    "good": None}
        assert {k: (v.record.refusal.reason if v.record.refusal else None)
                for k, v in seen.items()} == expected
        for item in seen.values():
            if item.record.refusal is not None:
                item.dead_letter(item.record.refusal)
            else:
                item.ack()
        time.sleep(0.5)
        assert side.connected
        with broker() as conn:
            _, dead, _ = conn.channel().queue_declare(topology.dead_letter_queue, passive=True)
        assert dead == 4
        letters = {d.record_id: d for d in list_dead_letters(settings)}
        assert letters["empty"].size == 0 and letters["empty"].reason == "record_empty"
        replayed = replay_dead_letters(settings, reason="record_empty")
        assert {d.record_id for d in replayed} == {"empty", "empty-binary"}
    finally:
        side.close()


def test_unique_ids_are_not_needed_for_refusals() -> None:
    first = to_local_record(_delivery(b"", "gzip"), TOPOLOGY)
    second = to_local_record(_delivery(b"", "gzip", message_id=str(uuid.uuid4())), TOPOLOGY)
    assert first.refusal is not None and second.refusal is not None


@pytest.mark.broker
def test_a_compression_header_is_not_obeyed(topology: AmqpTopology) -> None:
    """kombu's ``Message`` inflates a body whose headers name a ``compression`` before any
    callback sees it, without a bound: the adapter takes messages as published, so a small
    zlib bomb stays small (and is refused later as an unreadable record)."""
    inflated = b'{"id": "' + b"0" * (LIMIT * 500) + b'"}'
    _publish_raw(topology.outbound_queue, inflated, compression="zlib",
                 content_type="application/json", headers={"x-record-id": "bomb"})
    side = AmqpLocalSide(make_settings(topology), limits=RecordLimits(max_record_bytes=LIMIT))
    side.start()
    try:
        [item] = side.fetch(1, 10)
        assert item.record.record_id == "bomb" and item.record.refusal is None
        assert len(item.record.body) < LIMIT and item.record.body != inflated
        item.ack()
    finally:
        side.close()
