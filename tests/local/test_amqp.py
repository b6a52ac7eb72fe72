"""The AMQP local side against a real RabbitMQ: topology, intake, settlement, sink."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from connector.errors import ConfigurationError, PermanentError, UnavailableError
from connector.local import amqp_replay
from connector.local.amqp import AmqpIntakeItem, AmqpLocalSide, normalise_content_type
from connector.local.amqp_attachments import unpack
from connector.local.amqp_redelivery import RedeliveryExcuses
from connector.local.amqp_replay import list_dead_letters, replay_dead_letters
from connector.local.amqp_settings import (
    H_ATTACHMENTS,
    H_ERROR,
    H_REASON,
    H_SOURCE_QUEUE,
    H_STAGE,
    AmqpSettings,
    AmqpTopology,
)
from connector.local.amqp_topology import declare_topology
from connector.local.base import DeliveryKind, LocalDelivery, LocalEvent, RecordKind
from connector.metrics import ConnectorMetrics
from tests.local.test_amqp_helpers import (
    BROKER_URL,
    broker,
    get_all,
    make_settings,
    publish_records,
    queue_depth,
    side_factory_for,
    unique_topology,
    wait_until,
)

pytestmark = pytest.mark.broker

SideFactory = Callable[..., AmqpLocalSide]


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
    return [{"id": f"{prefix}-{i:04d}", "title": f"Công văn số {i}"} for i in range(count)]


def fetch_all(side: AmqpLocalSide, expected: int, timeout: float = 10.0) -> list[AmqpIntakeItem]:
    """Fetch until ``expected`` records arrived (fails after ``timeout``)."""
    items: list[AmqpIntakeItem] = []
    deadline = time.monotonic() + timeout
    while len(items) < expected:
        assert time.monotonic() < deadline, f"only {len(items)} of {expected} records arrived"
        items.extend(item for item in side.fetch(expected - len(items), 0.2)
                     if isinstance(item, AmqpIntakeItem))
    return items


def test_topology_is_declared_idempotently(topology: AmqpTopology) -> None:
    with broker() as conn:
        channel = conn.channel()
        declare_topology(channel, topology)
        declare_topology(channel, topology)  # the same arguments again: a no-op
        for queue in topology.queues():
            channel.queue_declare(queue, passive=True)
        for exchange in topology.exchanges():
            channel.exchange_declare(exchange, "topic", passive=True)


def test_conflicting_existing_queue_is_a_configuration_error(topology: AmqpTopology) -> None:
    with broker() as conn:  # an older queue without x-max-priority
        channel = conn.channel()
        channel.queue_delete(topology.outbound_queue)
        channel.queue_declare(topology.outbound_queue, durable=True, auto_delete=False)
    side = AmqpLocalSide(make_settings(topology))
    with pytest.raises(ConfigurationError) as caught:
        side.start()
    assert caught.value.reason == "broker_topology_mismatch"
    assert topology.outbound_queue in caught.value.message or "arguments" in caught.value.message


def test_urgent_records_overtake_a_backlog(topology: AmqpTopology, side_factory: SideFactory) -> None:
    backlog = records(500, "ordinary")
    urgent = records(10, "urgent")
    publish_records(topology.outbound_queue, backlog)
    publish_records(topology.outbound_queue, urgent[:4], priority=lambda i: 3 if i % 2 else 1)
    side = side_factory(prefetch=16)
    first = fetch_all(side, 4)[:4]
    assert [item.record.record_id for item in first] == [
        "urgent-0001", "urgent-0003", "urgent-0000", "urgent-0002"]  # 3 before 1, then age
    assert [item.record.priority for item in first] == [3, 3, 1, 1]
    order = [item.record.record_id for item in first]
    for item in first:
        item.ack()
    def work_through(count: int) -> None:
        deadline = time.monotonic() + 20
        target = len(order) + count
        while len(order) < target:
            assert time.monotonic() < deadline, f"{target - len(order)} records missing"
            for item in side.fetch(1, 0.2):
                order.append(item.record.record_id)
                item.ack()

    work_through(50)  # the daemon works through the backlog ...
    publish_records(topology.outbound_queue, urgent[4:], priority=lambda i: 2)  # ... more come
    work_through(456)
    late_urgent = [order.index(r["id"]) for r in urgent[4:]]
    # They overtake all but what was already prefetched (16 per queue) when they arrived.
    assert max(late_urgent) < 54 + 16 + 6 + 10, late_urgent
    assert sorted(order) == sorted(r["id"] for r in backlog + urgent)


def test_record_carries_the_message_contract(topology: AmqpTopology,
                                             side_factory: SideFactory) -> None:
    with broker() as conn:
        conn.Producer().publish(
            b"<record><id>x-1</id></record>", routing_key=topology.commands_queue,
            content_type="text/xml; charset=utf-8",
            headers={"x-record-id": "cmd-1", "x-format": "legacy-xml", "x-custom": 7},
            priority=9, delivery_mode=2)
    side = side_factory()
    [item] = fetch_all(side, 1)
    record = item.record
    assert record.record_id == "cmd-1"
    assert record.kind is RecordKind.COMMAND
    assert record.mapping == "legacy-xml"
    assert record.content_type == "application/xml"
    assert record.body == b"<record><id>x-1</id></record>"
    assert record.priority == 3  # capped to the urgency scale
    assert record.headers["x-custom"] == "7"
    assert record.headers["x-connector-redelivered"] == "false"
    assert topology.commands_queue in record.source
    assert not item.redelivered and item.delivery_count == 1
    item.ack()


def test_content_type_is_normalised_or_sniffed() -> None:
    assert normalise_content_type("application/json; charset=utf-8", b"{}") == "application/json"
    assert normalise_content_type(None, b'  {"a": 1}') == "application/json"
    assert normalise_content_type("application/octet-stream", b"<a/>") == "application/xml"
    assert normalise_content_type("application/vnd.x+xml", b"") == "application/xml"
    assert normalise_content_type(None, b"PDF") == "application/octet-stream"


def test_ack_removes_and_release_redelivers(topology: AmqpTopology,
                                           side_factory: SideFactory) -> None:
    publish_records(topology.outbound_queue, records(2))
    side = side_factory()
    first, second = fetch_all(side, 2)
    first.ack()
    second.release()
    [again] = fetch_all(side, 1)
    assert again.record.record_id == second.record.record_id
    assert again.redelivered and again.record.headers["x-connector-redelivered"] == "true"
    assert again.delivery_count == 1  # a release is not a crash
    again.ack()
    with pytest.raises(RuntimeError):
        again.ack()
    side.close()
    assert queue_depth(topology.outbound_queue) == 0
    assert queue_depth(topology.quarantine_queue) == 0


def test_dead_letter_keeps_the_original_with_reasons_and_replays(
    topology: AmqpTopology, settings: AmqpSettings, side_factory: SideFactory
) -> None:
    publish_records(topology.outbound_queue, records(1, "secret"))
    side = side_factory()
    [item] = fetch_all(side, 1)
    item.dead_letter(PermanentError("record secret-0000: độ mật 'Mật' may not be sent",
                                    reason="secret_document", stage="classify"))
    wait_until(lambda: queue_depth(topology.dead_letter_queue) == 1, 5, "the dead letter")
    side.close()
    assert queue_depth(topology.outbound_queue) == 0

    [letter] = list_dead_letters(settings)
    assert (letter.record_id, letter.reason, letter.stage) == (
        "secret-0000", "secret_document", "classify")
    assert "Mật" in letter.error and letter.source_queue == topology.outbound_queue

    [message] = get_all(topology.dead_letter_queue)
    headers = message.properties["application_headers"]
    assert headers[H_REASON] == "secret_document" and headers[H_STAGE] == "classify"
    assert "may not be sent" in headers[H_ERROR]
    assert headers[H_SOURCE_QUEUE] == topology.outbound_queue
    assert headers["x-record-id"] == "secret-0000" and headers["x-mapping"] == "default"
    assert json.loads(message.body) == records(1, "secret")[0]
    assert message.properties["content_type"] == "application/json"

    # Put it back and replay it: the agency's message arrives as it was, without our headers.
    with broker() as conn:
        conn.channel().basic_publish(message, exchange="",
                                     routing_key=topology.dead_letter_queue)
    replayed = replay_dead_letters(settings, reason="secret_document")
    assert [r.record_id for r in replayed] == ["secret-0000"]
    assert queue_depth(topology.dead_letter_queue) == 0
    [back] = get_all(topology.outbound_queue)
    back_headers = back.properties["application_headers"]
    assert back.body == message.body
    assert back_headers["x-record-id"] == "secret-0000"
    assert back_headers["x-connector-replays"] == 1
    assert H_REASON not in back_headers and H_ERROR not in back_headers


def test_replay_filters_leave_other_letters_in_place(
    topology: AmqpTopology, settings: AmqpSettings, side_factory: SideFactory
) -> None:
    publish_records(topology.outbound_queue, records(3))
    side = side_factory()
    for index, item in enumerate(fetch_all(side, 3)):
        item.dead_letter(PermanentError("bad", reason=f"reason_{index}", stage="map"))
    wait_until(lambda: queue_depth(topology.dead_letter_queue) == 3, 5, "three dead letters")
    assert [r.record_id for r in replay_dead_letters(settings, record_id="rec-0001")] == [
        "rec-0001"]
    assert [letter.reason for letter in list_dead_letters(settings)] == ["reason_0", "reason_2"]


def test_unroutable_publish_is_an_error_not_a_silent_drop(topology: AmqpTopology) -> None:
    bare = dataclasses.replace(topology, events_queue=None)  # nothing bound to the exchange
    with broker() as conn:
        conn.channel().queue_delete(topology.events_queue)
    metrics = ConnectorMetrics(process_metrics=False)
    side = AmqpLocalSide(make_settings(bare), metrics=metrics)
    side.start()
    try:
        with pytest.raises(UnavailableError) as caught:
            side.emit(LocalEvent("outbound.sent", {"record_id": "r-1"}))
        assert caught.value.reason == "unroutable"
        assert "outbound.sent" in caught.value.message
        assert metrics.broker_publish_failures.labels("unroutable")._value.get() == 1
        # A routable publish on the same publisher still works afterwards.
        side.deliver(LocalDelivery("d-1", DeliveryKind.DOCUMENT, b"{}", "application/json"))
    finally:
        side.close()


def test_publisher_confirms_are_on(side_factory: SideFactory) -> None:
    side = side_factory()
    side.emit(LocalEvent("outbound.accepted", {"n": 1}))
    channel = side._publisher._channel
    assert channel.connection.confirm_publish is True
    assert channel._confirm_selected is True


def test_deliver_and_emit_reach_the_local_queues(topology: AmqpTopology,
                                                 side_factory: SideFactory) -> None:
    side = side_factory()
    side.deliver(LocalDelivery(
        "in-1", DeliveryKind.DOCUMENT, b'{"so": "12/UBND"}', "application/json",
        attachments=[("công văn.pdf", b"%PDF-1.7 body"), ("phụ lục.pdf", b"%PDF annex")],
        headers={"business-doc-type": "3", "priority": "2", "document-id": "x"}))
    side.deliver(LocalDelivery("st-1", DeliveryKind.STATUS, b"{}", "application/json",
                               headers={"status-code": "03", "hub-id": "vxp-77",
                                        "organ-id": "000.00.00.H02"}))
    side.emit(LocalEvent("status.01", {"document_id": "000.00.00.H01,2024/01/02,12/UBND"},
                         event_id="ev-1"))
    document, status = get_all(topology.inbound_queue)
    assert document.delivery_info["routing_key"] == "document.replace"
    assert document.properties["message_id"] == "in-1"
    assert document.properties["priority"] == 2
    body, content_type, files = unpack(document.body, document.properties["content_type"])
    assert (body, content_type) == (b'{"so": "12/UBND"}', "application/json")
    assert files == [("công văn.pdf", b"%PDF-1.7 body"), ("phụ lục.pdf", b"%PDF annex")]
    assert status.delivery_info["routing_key"] == "status.03"
    # the dedupe key is the hub's id (per organisation of ours), never the store's counter
    assert status.properties["message_id"] == "vxp-77@000.00.00.H02"
    [event] = get_all(topology.events_queue)
    assert event.delivery_info["routing_key"] == "status.01"
    assert event.properties["message_id"] == "ev-1"
    assert json.loads(event.body)["document_id"].startswith("000.00.00.H01")


def test_large_attachments_go_by_claim_check(topology: AmqpTopology, tmp_path: Path,
                                             side_factory: SideFactory) -> None:
    side = side_factory(claim_check_dir=tmp_path, inline_attachments_max_bytes=10)
    side.deliver(LocalDelivery("in/2", DeliveryKind.DOCUMENT, b"{}", "application/json",
                               attachments=[("../big.pdf", b"x" * 100)]))
    [message] = get_all(topology.inbound_queue)
    assert message.body == b"{}"
    [listed] = json.loads(message.properties["application_headers"][H_ATTACHMENTS])
    path = Path(listed["path"])
    assert path.parent.parent == tmp_path  # the name cannot escape the folder
    assert path.read_bytes() == b"x" * 100 and listed["size"] == 100

    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    stuck = side_factory(claim_check_dir=blocked, inline_attachments_max_bytes=10)
    with pytest.raises(UnavailableError) as caught:
        stuck.deliver(LocalDelivery("in/3", DeliveryKind.DOCUMENT, b"{}", "application/json",
                                    attachments=[("big.pdf", b"x" * 100)]))
    assert caught.value.reason == "claim_check_unwritable"
    assert get_all(topology.inbound_queue) == []  # nothing published without its files


def test_broker_down_at_start_is_retried_and_fetch_reports_unavailable(
    topology: AmqpTopology,
) -> None:
    metrics = ConnectorMetrics(process_metrics=False)
    settings = make_settings(topology, url="amqp://guest:guest@127.0.0.1:1//",
                             connect_timeout=0.5)
    side = AmqpLocalSide(settings, metrics=metrics)
    side.start(wait=1.0)  # does not raise: the daemon keeps running and waits
    try:
        with pytest.raises(UnavailableError) as caught:
            side.fetch(10, 0.5)
        assert caught.value.reason == "broker_unavailable"
        assert "127.0.0.1:1" in caught.value.message
        assert metrics.components() == {"broker": False}
        with pytest.raises(UnavailableError):
            side.emit(LocalEvent("outbound.sent", {}))
    finally:
        side.close(timeout=2)


def test_wrong_password_is_a_configuration_error(topology: AmqpTopology) -> None:
    side = AmqpLocalSide(make_settings(topology, url="amqp://guest@127.0.0.1:5672//",
                                       password="not-the-password"))
    with pytest.raises(ConfigurationError) as caught:
        side.start()
    assert caught.value.reason == "broker_access_refused"
    assert "not-the-password" not in caught.value.message


def test_close_hands_back_buffered_records_as_fresh_messages(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    publish_records(topology.outbound_queue, records(20))
    side = side_factory(prefetch=20)
    taken = fetch_all(side, 1)[:1]
    wait_until(lambda: len(side._consumer._ready) >= 19, 5, "the prefetch to fill")
    taken[0].release()
    side.close()
    assert queue_depth(topology.outbound_queue) == 20
    successor = side_factory()
    items = fetch_all(successor, 20)
    assert sorted(i.record.record_id for i in items) == [r["id"] for r in records(20)]
    assert not any(item.redelivered for item in items)  # an orderly stop is no crash
    assert queue_depth(topology.quarantine_queue) == 0
    for item in items:
        item.ack()


def test_publisher_recovers_from_a_lost_connection_and_a_deleted_exchange(
    topology: AmqpTopology, side_factory: SideFactory
) -> None:
    side = side_factory()
    side.emit(LocalEvent("outbound.accepted", {"n": 1}))
    publisher_connection = side._publisher._conn
    assert publisher_connection is not None
    publisher_connection.connection.sock.shutdown(socket.SHUT_RDWR)  # link dropped while idle
    side.emit(LocalEvent("outbound.sent", {"n": 1}))  # reconnects once, transparently

    with broker() as conn:
        conn.channel().exchange_delete(topology.events_exchange)
    with pytest.raises(UnavailableError) as caught:
        side.emit(LocalEvent("outbound.failed", {"n": 1}))
    assert caught.value.reason == "broker_not_found"
    side.emit(LocalEvent("outbound.failed", {"n": 1}))  # the topology was declared again
    keys = [m.delivery_info["routing_key"] for m in get_all(topology.events_queue)]
    assert keys == ["outbound.accepted", "outbound.sent", "outbound.failed"]


def test_dead_letter_command_line_lists_and_replays(
    topology: AmqpTopology, side_factory: SideFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_records(topology.outbound_queue, records(2))
    side = side_factory()
    for item in fetch_all(side, 2):
        item.dead_letter(PermanentError("mapping 'x' unknown", reason="unknown_mapping",
                                        stage="map"))
    side.close()
    prefix = topology.outbound_queue.removesuffix("edoc.outbound")
    assert amqp_replay.main(["--url", BROKER_URL, "--prefix", prefix, "list"]) == 0
    listed = capsys.readouterr()
    assert "rec-0000\tunknown_mapping\tmap" in listed.out
    assert "2 record(s) listed" in listed.err
    assert amqp_replay.main(["--url", BROKER_URL, "--prefix", prefix, "replay", "--all"]) == 0
    assert queue_depth(topology.outbound_queue) == 2
    assert queue_depth(topology.dead_letter_queue) == 0


def test_dead_letter_command_line_reads_the_connector_configuration(
    topology: AmqpTopology, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "connector.yaml"
    document = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    document["local"] = {"type": "amqp", "amqp": {
        "url": BROKER_URL.replace("guest:guest@", "guest@"),  # no password in the YAML
        "topology": {"prefix": topology.outbound_queue.removesuffix("edoc.outbound")},
    }}
    config = tmp_path / "connector.yaml"
    config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    publish_records(topology.dead_letter_queue, records(1, "parked"))
    assert amqp_replay.main(["--config", str(config), "list"]) == 0
    assert "parked-0000" in capsys.readouterr().out


def test_redelivery_excuses() -> None:
    now = [0.0]
    excuses = RedeliveryExcuses(clock=lambda: now[0])
    excuses.excuse("released")
    assert excuses.is_excused("q", "released")
    assert not excuses.is_excused("q", "released")  # an excuse is used once
    # Lost link: 3 held of a prefetch of 5 -> those 3, plus 2 unseen ones, are excused.
    excuses.connection_lost([("q", "a"), ("q", "b"), ("q", "c")], {"q": 5, "quarantine": 1})
    excuses.connected()
    assert all(excuses.is_excused("q", fp) for fp in ("a", "b", "c", "unseen-1", "unseen-2"))
    assert not excuses.is_excused("q", "crashed-elsewhere")
    assert excuses.is_excused("quarantine", "x") and not excuses.is_excused("quarantine", "y")
    excuses.connection_lost([], {"q": 5})
    excuses.connected()
    now[0] += 31  # the amnesty covers only the first seconds after reconnecting
    assert not excuses.is_excused("q", "late")
