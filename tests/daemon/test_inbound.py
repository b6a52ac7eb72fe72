"""Inbound against the real hub emulator: agencies A and B built in this process on the demo
PKI, with their real spool folders and stores. A sends with its real pipeline; B's inbound
stages are driven one polling round at a time."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest

from connector.daemon import inbound, outbound, sender
from connector.daemon.faults import InjectedFault
from connector.daemon.retry import DependencyBackoff
from connector.daemon.wiring import Runtime
from connector.errors import PermanentError, UnavailableError
from connector.store.api import TrackedPackage
from connector.store.states import (
    Direction,
    InboundState,
    OutboundState,
    PackageKind,
    RecipientState,
)
from tests.e2e.harness import A_ID, B_ID, Record, World
from tests.e2e.inprocess import daemon_pki, runtime, status_notices, world  # noqa: F401


@pytest.fixture
def a(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.a)
    yield built
    built.close()


@pytest.fixture
def b(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.b)
    yield built
    built.close()


def _send(world: World, a: Runtime, name: str = "01-ordinary.json") -> Record:  # noqa: F811
    record = world.json_record(name)
    world.a.drop_record(record)
    (item,) = a.services.intake.fetch(1, 5.0)
    outbound.handle(a.services, item)
    sender.send_round(a.services, DependencyBackoff(a.services.retry))
    (package,) = [
        p for p in a.services.store.find(direction=Direction.OUTBOUND) if p.key == record.record_id
    ]
    assert package.state is OutboundState.SENT
    return record


def _inbound(runtime_: Runtime) -> list[TrackedPackage]:
    return runtime_.services.store.find(direction=Direction.INBOUND, limit=100)


def test_document_goes_to_the_local_side_then_the_hub_hears_done_then_01_is_queued(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    record = _send(world, a, "03-attachments.json")
    assert inbound.poll_once(b.services) == 1

    (package,) = _inbound(b)
    assert package.inbound_state is InboundState.NOTIFIED
    events = [e.event for e in b.services.store.events(package.id)]
    assert events[-4:] == ["verified", "delivered", "acknowledged", "notified"]
    verified = next(e for e in b.services.store.events(package.id) if e.event == "verified")
    assert "XML signature valid" in verified.detail and "valid signature(s)" in verified.detail

    (delivery,) = world.b.deliveries()
    assert delivery.folder.name == f"in-{package.id}"
    assert delivery.headers["from"] == A_ID and delivery.document_id == package.document_id
    assert package.hub_id and delivery.headers["hub-id"] == package.hub_id  # the dedupe key
    assert delivery.record()["trich_yeu"] == record.subject
    assert len(delivery.files()) == 3  # main document and two appendices, decrypted
    assert world.b.events("inbound.delivered")
    assert world.hub is not None
    assert [d.state for d in world.hub.deliveries(recipient=B_ID)] == ["done"]

    (notice,) = status_notices(b)
    assert notice.state is OutboundState.READY and notice.status_code == "01"
    assert notice.related_id == package.id and notice.key == f"notice-01:{package.id}"
    assert [r.organ_id for r in b.services.store.recipients(notice.id)] == [A_ID]

    # The 01 reaches A: tracked per recipient, handed to A's local side, told as an event.
    sender.send_round(b.services, DependencyBackoff(b.services.retry))
    assert inbound.poll_once(a.services) == 1
    (document,) = [
        p for p in a.services.store.find(direction=Direction.OUTBOUND) if p.kind is PackageKind.EDOC
    ]
    states = {r.organ_id: r.state for r in a.services.store.recipients(document.id)}
    assert states == {B_ID: RecipientState.ARRIVED, "000.00.33.H12": RecipientState.SENT}
    (status,) = _inbound(a)
    assert status.kind is PackageKind.STATUS and status.inbound_state is InboundState.ACKNOWLEDGED
    (notice_at_a,) = world.a.deliveries("status")
    assert notice_at_a.headers["status-code"] == "01"
    (event,) = world.a.events("status.01")
    assert event["document_id"] == document.document_id and event["from_organ_id"] == B_ID
    assert not status_notices(a), "nobody answers a status with a status"


def test_duplicate_listing_and_redelivery_reach_the_local_side_once(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    assert world.hub is not None
    _send(world, a)
    world.hub.set_faults(duplicate_list_rate=1.0)
    assert inbound.poll_once(b.services) == 2  # the same entry listed twice
    world.hub.set_faults(duplicate_list_rate=0.0)
    (first,) = world.hub.deliveries(recipient=B_ID)
    world.hub.redeliver(first.delivery_id)  # the same package again, under a new DocId
    assert inbound.poll_once(b.services) == 1

    (package,) = _inbound(b)
    assert "duplicate_acknowledged" in [e.event for e in b.services.store.events(package.id)]
    assert len(world.b.deliveries()) == 1
    assert {d.state for d in world.hub.deliveries(recipient=B_ID)} == {"done"}
    assert len(status_notices(b)) == 1


def test_tampered_package_is_rejected_and_acknowledged_fail_without_a_02(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    # Its signature no longer verifies, so nothing establishes who sent it: B answers no one
    # (a 02 to whoever the From names would let anyone make B sign messages to others).
    record = world.json_record("01-ordinary.json")
    world.a.drop_record(record)
    (item,) = a.services.intake.fetch(1, 5.0)
    outbound.handle(a.services, item)
    (package,) = a.services.store.find(direction=Direction.OUTBOUND)
    raw = a.services.store.raw(package.id)
    assert raw is not None
    subject = record.subject.encode("utf-8")
    assert subject in raw
    tampered = raw.replace(subject, subject.replace(b"2025", b"2026"))
    a.services.hub.send(tampered, message_type="edoc", sender=A_ID, to=[B_ID])

    inbound.poll_once(b.services)
    (rejected,) = _inbound(b)
    assert rejected.inbound_state is InboundState.REJECTION_NOTIFIED
    assert rejected.last_error is not None
    assert not world.b.deliveries(kind=None), "a tampered package reached the local side"
    assert world.hub is not None
    assert [d.state for d in world.hub.deliveries(recipient=B_ID)] == ["fail"]
    (event,) = world.b.events("inbound.rejected")
    assert event["reason"] == rejected.last_error.reason == "signature_invalid"
    assert status_notices(b) == []
    finished = [e for e in b.services.store.events(rejected.id) if e.event == "rejection_notified"]
    assert "no 02" in finished[-1].detail


@pytest.mark.parametrize(
    ("point", "left_in"),
    [
        ("after_store_received", InboundState.RECEIVED),
        ("after_deliver", InboundState.VERIFIED),
        ("after_ack", InboundState.DELIVERED),
    ],
)
def test_crash_mid_way_is_resumed_without_delivering_twice(
    world: World,  # noqa: F811
    a: Runtime,
    point: str,
    left_in: InboundState,
) -> None:
    _send(world, a)

    def fault(reached: str) -> None:
        if reached == point:
            raise InjectedFault(reached)

    crashed = runtime(world, world.b, fault_hook=fault)
    try:
        with pytest.raises(InjectedFault):
            inbound.poll_once(crashed.services)
        (package,) = _inbound(crashed)
        assert package.inbound_state is left_in
    finally:
        crashed.close()

    restarted = runtime(world, world.b)
    try:
        inbound.resume(restarted.services)
        inbound.poll_once(restarted.services)  # the hub may list it again: nothing repeats
        (package,) = _inbound(restarted)
        assert package.inbound_state is InboundState.NOTIFIED
        assert len(world.b.deliveries()) == 1
        assert len(status_notices(restarted)) == 1
        assert world.hub is not None
        assert [d.state for d in world.hub.deliveries(recipient=B_ID)] == ["done"]
    finally:
        restarted.close()


def test_acknowledgement_whose_answer_was_lost_is_carried_on(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    """The hub took ``done`` but the answer was lost: it no longer lists the package, and
    the loop must still finish it (acknowledged, 01 queued) without a restart."""
    assert world.hub is not None
    _send(world, a)
    world.hub.inject("drop_after", call="updateStatus")
    stop = threading.Event()
    thread = threading.Thread(target=inbound.inbound_loop, args=(b.services, stop))
    thread.start()
    try:
        world.wait(
            "the package NOTIFIED",
            lambda: [p for p in _inbound(b) if p.inbound_state is InboundState.NOTIFIED],
            watch=(),
        )
    finally:
        stop.set()
        thread.join(10)
    assert next(r.fault for r in world.hub.requests("updateStatus")) == "drop_after"
    assert len(world.b.deliveries()) == 1 and len(status_notices(b)) == 1


def test_hub_down_while_listing_is_unavailable_not_a_message_problem(
    world: World,  # noqa: F811
    b: Runtime,
) -> None:
    assert world.hub is not None
    world.hub.inject("error", call="getReceivedEdocList", status=503)
    with pytest.raises(UnavailableError):
        inbound.poll_once(b.services)
    assert not _inbound(b)


def test_authentic_package_our_side_cannot_take_fails_with_reason_until_retried(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    """Not the sender's fault (no 02, no ``fail`` to the hub): FAILED with the reason for an
    operator, left waiting at the hub; after the fix and ``messages retry`` it goes through."""

    class Unmappable:
        def __init__(self, real: object) -> None:
            self.real = real

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

        def package_to_delivery(self, package: object, delivery_id: str) -> object:
            raise PermanentError("no field for the document type", reason="mapping_back")

    _send(world, a)
    broken = dataclasses.replace(b.services, mapper=Unmappable(b.services.mapper))  # type: ignore[arg-type]
    inbound.poll_once(broken)
    inbound.poll_once(broken)  # listed again: nothing more happens

    (package,) = _inbound(b)
    assert package.inbound_state is InboundState.FAILED
    assert package.last_error is not None and package.last_error.reason == "mapping_back"
    (event,) = world.b.events("inbound.failed")
    assert event["reason"] == "mapping_back" and event["package_id"] == package.id
    assert not world.b.deliveries(kind=None) and not status_notices(b)
    assert world.hub is not None
    assert [d.state for d in world.hub.deliveries(recipient=B_ID)] == ["pending"]

    b.services.store.retry(package.id)  # connector messages retry, once the mapping is fixed
    inbound.poll_once(b.services)
    assert _inbound(b)[0].inbound_state is InboundState.NOTIFIED
    assert len(world.b.deliveries()) == 1 and len(status_notices(b)) == 1
