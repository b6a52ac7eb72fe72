"""A → hub → B on the embedded defaults, with the shipped configurations unchanged.

Every example record of agency A (JSON in ``outbound/``, legacy XML in
``outbound/legacy-xml/``) travels to B once, with the PDFs exactly as A sealed them; the two
secret records never leave A; B's automatic 01 and its clerk's 03, 05 and 06 reach A's
tracking, events and local side; A's example workflow commands (a 03, and a recall request 13
in legacy XML) reach B.
"""

from __future__ import annotations

import json

import pytest

from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from tests.e2e import checks
from tests.e2e.harness import (
    B_ID,
    EXAMPLES,
    JSON_RECORDS,
    JSON_SECRET,
    XML_RECORDS,
    XML_SECRET,
    World,
    drop,
    status_command,
    xml_recall_command,
)

pytestmark = pytest.mark.slow


def test_every_example_record_reaches_b_once_and_statuses_come_back(world: World) -> None:
    world.start_hub()
    world.a.start()
    world.b.start()
    records = [world.json_record(n) for n in JSON_RECORDS] + [
        world.xml_record(n) for n in XML_RECORDS
    ]
    secret = [world.json_record(JSON_SECRET), world.xml_record(XML_SECRET)]
    assert all(r.secret for r in secret) and not any(r.secret for r in records)
    for record in [*records, *secret]:
        world.a.drop_record(record)

    # The secret records are refused before packaging, with a reason, and kept for replay.
    refused = world.wait(
        "both secret records refused",
        lambda: (found := world.a.events("outbound.refused")) and len(found) == 2 and found,
    )
    assert {e["local_id"] for e in refused} == {r.record_id for r in secret}
    assert {(e["reason"], e["stage"]) for e in refused} == {("secret_document", "classification")}
    assert sorted(p.name for p in world.a.failed_records()) == sorted(r.name for r in secret)

    # Every other record arrives at B once, and A learns of B's automatic 01 for each.
    checks.wait_documents_at_b(world, records)
    states = checks.wait_arrived(world, len(records))
    assert set(states.values()) == {RecipientState.ARRIVED}

    # A's own workflow commands: a 03 about a document B sent earlier (A has no trace of it:
    # B records it), and a recall request (13) of the urgent invitation sent as legacy XML.
    accepted = (EXAMPLES / "qlvb-json" / "20-command-accepted.json").read_bytes()
    world.a.drop_command("LENH-2025-000042", accepted)
    invitation = next(r for r in records if r.name == "QLVB-2025-00202.xml")
    name, recall = xml_recall_command("20-command-recall.xml", checks.document_id(invitation))
    drop(world.a.spool / "commands" / "legacy-xml", name, recall)
    notices_at_b = world.wait(
        "the 03 and the 13 at B",
        lambda: (
            (found := {d.headers["status-code"]: d for d in world.b.deliveries("status")})
            and {"03", "13"} <= set(found)
            and found
        ),
    )
    assert notices_at_b["03"].document_id == "000.00.32.H12,2025/05/26,230/STC-HCSN"
    assert notices_at_b["13"].document_id == checks.document_id(invitation)
    with world.a.store() as store:
        sent_invitation = next(
            p
            for p in store.find(direction=Direction.OUTBOUND, limit=500)
            if p.key == invitation.record_id
        )
        states = {r.organ_id: r.state for r in store.recipients(sent_invitation.id)}
    assert states == {B_ID: RecipientState.RECALL_REQUESTED}

    # B's clerk works on the first document: 03 accepted, 05 processing, 06 done.
    first = next(
        d
        for d in world.b.deliveries()
        if d.document_id == checks.document_id(records[0]) and d.headers["business-doc-type"] == "0"
    )
    for number, code in enumerate(("03", "05", "06"), start=1):
        world.b.drop_command(
            f"LENH-E2E-{number}", status_command(f"LENH-E2E-{number}", code, first.document_id)
        )
    world.wait("06 at A", lambda: world.a.events("status.06"))
    for code in ("03", "05", "06"):
        assert any(e["document_id"] == first.document_id for e in world.a.events(f"status.{code}"))

    with world.a.store() as store:
        documents = {
            p.id: p
            for p in store.find(direction=Direction.OUTBOUND, limit=500)
            if p.kind is PackageKind.EDOC
        }
        by_state = {p.key: p.state for p in documents.values()}
        assert by_state == {
            **{r.record_id: OutboundState.SENT for r in records},
            **{r.record_id: OutboundState.REFUSED for r in secret},
        }
        original = next(p for p in documents.values() if p.key == records[0].record_id)
        b_state = {r.organ_id: r.state for r in store.recipients(original.id)}[B_ID]
        assert b_state is RecipientState.FINISHED

    # What arrived is what was sent, once; the hub never saw anything secret.
    checks.assert_exactly_once(world, records)
    checks.assert_same_content(world, records)
    checks.assert_hub_holds_what_was_stored(world, world.a)
    checks.assert_hub_holds_what_was_stored(world, world.b)
    secret_ids = {checks.document_id(r) for r in secret}
    assert not [p for p in world.hub_packages() if p.document_id in secret_ids]
    for r in secret:
        assert not any(r.subject.encode() in p.data for p in world.hub_packages())

    # A's local side got B's statuses as deliveries too (status notices in inbound/).
    notices = [d for d in world.a.deliveries("status") if d.document_id == first.document_id]
    assert {d.headers["status-code"] for d in notices} >= {"01", "03", "05", "06"}

    # The operator sees the timeline of the first document.
    shown = world.a.cli("messages", "show", str(original.id), "--json")
    assert shown.returncode == 0, shown.stderr
    timeline = json.loads(shown.stdout)
    assert timeline["state"] == "SENT" and timeline["key"] == records[0].record_id
    assert {r["organ_id"]: r["state"] for r in timeline["recipients"]} == {B_ID: "FINISHED"}
    # (The 01 of the revoke package, which carries the same DocumentId, is recorded on the
    # original too: statuses name documents, not packages.)
    events = [e["event"] for e in timeline["events"]]
    assert list(dict.fromkeys(events)) == [
        "accepted",
        "ready",
        "sent",
        "status_01",
        "status_03",
        "status_05",
        "status_06",
    ]

    assert world.close() == {"A": 0, "B": 0}
