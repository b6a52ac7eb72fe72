"""Hub faults from the emulator: 5xx, dropped connections before and after processing,
answers slower than the client's timeout, slow answers, duplicate listing and duplicate
delivery. Every document still arrives once, with the content A sealed; retries back off; a
package the hub refuses for good ends FAILED with its reason, for the operator and the
local side.
"""

from __future__ import annotations

import collections
import json

import pytest

from connector.store.api import Event
from connector.store.states import Direction, OutboundState, PackageKind
from tests.e2e import checks
from tests.e2e.harness import A_ID, B_ID, Agency, Record, World

pytestmark = pytest.mark.slow


def _settled(world: World, records: list[Record]) -> None:
    checks.wait_documents_at_b(world, records)
    checks.wait_arrived(world, len(records))
    assert world.hub is not None
    world.wait("every delivery acknowledged", lambda: not world.hub.inbox(B_ID))
    world.wait("every status acknowledged", lambda: not world.hub.inbox(A_ID))
    checks.assert_exactly_once(world, records)
    checks.assert_same_content(world, records)
    checks.assert_hub_holds_what_was_stored(world, world.a)
    checks.assert_hub_holds_what_was_stored(world, world.b)


def test_scripted_faults_on_every_call_are_retried_and_delivered_once(world: World) -> None:
    world.derive(world.a)  # read timeout 3 s, retries from 0.3 s
    world.derive(world.b)
    hub = world.start_hub()
    # sendEdoc (A's documents, then B's 01s): two 503s, a connection dropped before and one
    # dropped after the hub stored the package, and an answer later than the read timeout.
    hub.inject("error", call="sendEdoc", times=2, status=503)
    hub.inject("drop_before", call="sendEdoc")
    hub.inject("drop_after", call="sendEdoc")
    hub.inject(None, call="sendEdoc", delay_s=4.0)
    # B's side of the hub: the list fails, a fetch is lost, an acknowledgement is processed
    # but its answer lost, another one is slow, and a 502 on the acknowledgement.
    hub.inject("error", call="getReceivedEdocList", times=2, status=502)
    hub.inject("drop_after", call="getEdoc")
    hub.inject("drop_after", call="updateStatus")
    hub.inject("error", call="updateStatus", status=500)
    hub.inject(None, call="getEdoc", delay_s=1.0)
    records = [
        world.json_record("01-ordinary.json"),
        world.json_record("02-urgent.json"),
        world.json_record("03-attachments.json"),
    ]
    for record in records:
        world.a.drop_record(record)
    world.a.start()
    world.b.start()
    _settled(world, records)
    # The slow answer is recorded when the hub finally answers, after the client gave up on
    # it and may already have settled everything by a resend.
    world.wait(
        "the slow sendEdoc answered",
        lambda: any(r.call == "sendEdoc" and r.fault == "latency" for r in hub.requests()),
    )

    faults = collections.Counter((r.call, r.fault) for r in hub.requests() if r.fault)
    assert faults[("sendEdoc", "error")] == 2
    assert faults[("sendEdoc", "drop_before")] == 1
    assert faults[("sendEdoc", "drop_after")] == 1
    assert faults[("sendEdoc", "latency")] == 1
    assert faults[("getReceivedEdocList", "error")] == 2
    assert faults[("getEdoc", "drop_after")] == 1
    assert faults[("updateStatus", "drop_after")] == 1
    assert faults[("updateStatus", "error")] == 1

    # A 5xx means the hub is down: the package waits without spending an attempt; a lost
    # answer is an ambiguous failure: an attempt is counted and the same bytes are resent.
    events = [e for agency in world.agencies for e in _store_events(agency)]
    assert any(e.event == "deferred" and "HTTP 503" in e.detail for e in events), events
    assert any(e.event == "retry_scheduled" for e in events)
    retries = [e for agency in world.agencies for e in agency.events("outbound.retry")]
    assert retries and all(e["next_attempt_in"] > 0 for e in retries)
    assert world.close() == {"A": 0, "B": 0}


def test_random_faults_duplicates_and_slow_answers(world: World) -> None:
    world.derive(world.a)
    world.derive(world.b)
    hub = world.start_hub(
        seed=20261120,
        error_rate=0.15,
        drop_before_rate=0.05,
        drop_after_rate=0.05,
        latency_ms=20,
        latency_jitter_ms=150,
        duplicate_list_rate=0.3,
        duplicate_delivery_rate=0.3,
    )
    records = [
        world.json_record("01-ordinary.json"),
        world.json_record("02-urgent.json"),
        world.json_record("04-reply.json"),
    ]
    for record in records:
        world.a.drop_record(record)
    world.a.start()
    world.b.start()
    _settled(world, records)
    assert any(r.fault for r in hub.requests()), "no fault was provoked"

    # Whatever the dice did, every document is now delivered once more by the hub, under a
    # new DocId: each is recognised, acknowledged and not handed over again.
    hub.clear_faults()
    done = [d for d in hub.deliveries(recipient=B_ID) if d.message_type == "edoc"]
    for delivery in {d.doc_id: d for d in done}.values():
        hub.redeliver(delivery.delivery_id)
    world.wait("the redeliveries acknowledged", lambda: not hub.inbox(B_ID))
    checks.assert_exactly_once(world, records)
    with world.b.store() as store:
        inbound = store.find(direction=Direction.INBOUND, limit=100)
        assert len(inbound) == len(records)
        for package in inbound:
            events = [e.event for e in store.events(package.id)]
            assert "duplicate_acknowledged" in events, (package.document_id, events)
        notices = [
            p for p in store.find(direction=Direction.OUTBOUND, limit=100) if p.status_code == "01"
        ]
    assert len(notices) == len(records), "a duplicate was answered with a second 01"
    assert world.close() == {"A": 0, "B": 0}


def test_package_refused_by_the_hub_ends_failed_with_its_reason(world: World) -> None:
    world.derive(world.a)
    refused = world.json_record("02-urgent.json")
    accepted = world.json_record("01-ordinary.json")
    world.start_hub(
        refuse=[
            {
                "document_id": checks.document_id(refused),
                "error_code": "1099",
                "description": "Văn bản bị từ chối (thử nghiệm)",
            }
        ]
    )
    world.a.drop_record(refused)
    world.a.drop_record(accepted)
    world.a.start()
    world.b.start()
    failed = world.wait("outbound.failed at A", lambda: world.a.events("outbound.failed"))
    assert len(failed) == 1
    event = failed[0]
    assert event["local_id"] == refused.record_id
    assert event["state"] == "FAILED"
    assert event["reason"] == "hub_refused"
    assert "1099" in event["message"] and "Văn bản bị từ chối (thử nghiệm)" in event["message"]

    shown = world.a.cli("messages", "show", str(event["package_id"]))
    assert shown.returncode == 0, shown.stderr
    assert "FAILED" in shown.stdout
    assert "hub_refused" in shown.stdout and "Văn bản bị từ chối (thử nghiệm)" in shown.stdout
    as_json = json.loads(world.a.cli("messages", "show", str(event["package_id"]), "--json").stdout)
    assert as_json["state"] == "FAILED"
    assert as_json["last_error"]["reason"] == "hub_refused"
    assert as_json["attempts"] == 1  # refused for good: not retried

    # The other document is not held up, and nothing of the refused one left for B.
    checks.wait_documents_at_b(world, [accepted])
    assert not world.hub_packages(sender=A_ID, kind="edoc") or all(
        p.document_id != checks.document_id(refused) for p in world.hub_packages()
    )
    with world.a.store() as store:
        states = {
            p.key: p.state
            for p in store.find(direction=Direction.OUTBOUND, limit=10)
            if p.kind is PackageKind.EDOC
        }
    assert states == {
        refused.record_id: OutboundState.FAILED,
        accepted.record_id: OutboundState.SENT,
    }
    assert world.close() == {"A": 0, "B": 0}


def _store_events(agency: Agency) -> list[Event]:
    with agency.store() as store:
        return [
            e
            for p in store.find(direction=Direction.OUTBOUND, limit=100)
            for e in store.events(p.id)
        ]
