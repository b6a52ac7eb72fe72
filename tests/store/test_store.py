"""The tracking store on SQLite and on PostgreSQL (every test runs on both): lifecycles,
idempotency, claims and leases, resume, payloads."""

from __future__ import annotations

import threading
import time

import pytest

from connector.errors import ConfigurationError, PermanentError
from connector.local.base import LocalRecord, RecordKind
from connector.store.api import (
    AddOutcome,
    ErrorInfo,
    NewInbound,
    NewOutbound,
    PackageFacts,
    PlaintextCipherForTests,
    TrackingStore,
    UnknownPackage,
    state_mapping,
)
from connector.store.states import (
    Direction,
    IllegalTransition,
    InboundState,
    OutboundState,
    PackageKind,
    RecipientState,
)
from tests.store.conftest import AesGcmTestCipher, FakeClock, Store, StoreOpener

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"
DOC_ID = f"{A},2025/07/01,12/SNV-VP"
EDOC, STATUS = PackageKind.EDOC, PackageKind.STATUS


def record(record_id: str = "rec-1", body: bytes = b'{"so": "12"}') -> LocalRecord:
    return LocalRecord(
        record_id=record_id,
        body=body,
        content_type="application/json",
        mapping="qlvb-json",
        kind=RecordKind.RECORD,
        priority=2,
        source=f"spool/outbound/{record_id}.json",
        headers={"x-origin": "test"},
    )


def facts(priority: int = 0, recipients: tuple[str, ...] = (B, C)) -> PackageFacts:
    return PackageFacts(
        document_id=DOC_ID,
        sender=A,
        recipients=recipients,
        priority=priority,
        code="12/SNV-VP",
    )


def ready(store: Store, local_id: str, priority: int = 0, raw: bytes = b"<edXML/>") -> int:
    added = store.add_outbound(
        NewOutbound(local_id, EDOC, OutboundState.READY, raw=raw, facts=facts(priority))
    )
    return added.package.id


def test_the_store_implements_the_protocol(store: Store) -> None:
    checked: TrackingStore = store
    assert checked is store


def test_outbound_lifecycle_with_timeline(store: Store, clock: FakeClock) -> None:
    added = store.add_outbound(NewOutbound("rec-1", EDOC, record=record()))
    assert added.outcome is AddOutcome.CREATED and added.is_new_work
    package = added.package
    assert package.state is OutboundState.ACCEPTED and package.direction is Direction.OUTBOUND
    assert store.record(package.id) == record()

    clock.advance(1)
    raw = b"<edXML>signed package</edXML>"
    store.mark_ready(package.id, raw, facts(priority=1))
    assert store.raw(package.id) == raw
    assert [r.state for r in store.recipients(package.id)] == [RecipientState.PENDING] * 2

    [claimed] = store.claim("sender-1")
    assert claimed.id == package.id and claimed.lease_owner == "sender-1"
    sent = store.mark_sent(package.id, "hub-777")
    assert sent.state is OutboundState.SENT and sent.hub_id == "hub-777"
    assert sent.attempts == 1 and sent.lease_owner is None
    assert store.mark_sent(package.id, "hub-777") == sent  # the same success twice: no-op
    assert [r.state for r in store.recipients(package.id)] == [RecipientState.SENT] * 2

    events = store.events(package.id)
    assert [e.event for e in events] == ["accepted", "ready", "sent"]
    assert [e.state for e in events] == ["ACCEPTED", "READY", "SENT"]
    assert "hub-777" in events[-1].detail
    assert events[0].at < events[1].at


def test_illegal_moves_raise_and_change_nothing(store: Store) -> None:
    package = store.add_outbound(NewOutbound("rec-1", EDOC, record=record())).package
    with pytest.raises(IllegalTransition, match="ACCEPTED → SENT"):
        store.mark_sent(package.id, "hub-1")
    with pytest.raises(IllegalTransition, match="mark_sent"):
        store.transition(package.id, OutboundState.SENT)
    with pytest.raises(IllegalTransition, match="only FAILED"):
        store.retry(package.id)
    store.mark_ready(package.id, b"<a/>", facts())
    with pytest.raises(IllegalTransition, match="READY → READY"):
        store.mark_ready(package.id, b"<b/>", facts())
    assert store.raw(package.id) == b"<a/>"
    assert store.get(package.id).state is OutboundState.READY
    assert [e.event for e in store.events(package.id)] == ["accepted", "ready"]
    with pytest.raises(UnknownPackage):
        store.get(999)


def test_ready_needs_its_package_and_refused_its_reason(store: Store) -> None:
    with pytest.raises(IllegalTransition):
        store.add_outbound(NewOutbound("x", EDOC, OutboundState.READY))
    with pytest.raises(IllegalTransition):
        store.add_outbound(NewOutbound("y", EDOC, OutboundState.REFUSED))
    with pytest.raises(IllegalTransition):
        store.add_outbound(NewOutbound("z", EDOC, OutboundState.SENT))
    with pytest.raises(PermanentError):
        store.add_outbound(NewOutbound("  ", EDOC))


def test_outbound_idempotency_by_local_record_id(store: Store) -> None:
    first = store.add_outbound(NewOutbound("rec-1", EDOC, record=record()))
    again = store.add_outbound(NewOutbound("rec-1", EDOC, record=record(body=b"other")))
    assert again.outcome is AddOutcome.EXISTING and not again.is_new_work
    assert again.package.id == first.package.id
    assert store.record(first.package.id) == record()  # the first content is kept
    assert len(store.find(direction=Direction.OUTBOUND)) == 1
    assert store.events(first.package.id)[-1].event == "duplicate"


def test_a_refused_record_can_come_back_corrected(store: Store) -> None:
    error = ErrorInfo("secret_document", "field do_mat = 'Mật': secret documents are never sent")
    refused = store.add_outbound(
        NewOutbound("rec-9", EDOC, OutboundState.REFUSED, record=record("rec-9"), error=error)
    )
    assert refused.package.state is OutboundState.REFUSED
    assert refused.package.last_error == error
    assert store.recipients(refused.package.id) == []

    again = store.add_outbound(
        NewOutbound("rec-9", EDOC, OutboundState.REFUSED, record=record("rec-9"), error=error)
    )
    assert again.outcome is AddOutcome.EXISTING

    fixed = record("rec-9", body=b'{"do_mat": ""}')
    reopened = store.add_outbound(NewOutbound("rec-9", EDOC, record=fixed))
    assert reopened.outcome is AddOutcome.REOPENED and reopened.is_new_work
    assert reopened.package.state is OutboundState.ACCEPTED
    assert reopened.package.last_error is None
    assert store.record(reopened.package.id) == fixed
    assert [e.event for e in store.events(reopened.package.id)] == [
        "refused",
        "refused",
        "resubmitted",
    ]


def test_mark_refused_after_acceptance(store: Store) -> None:
    package = store.add_outbound(NewOutbound("rec-1", EDOC, record=record())).package
    refused = store.mark_refused(package.id, ErrorInfo("mapping_error", "no field 'so'", "map"))
    assert refused.state is OutboundState.REFUSED
    assert refused.last_error == ErrorInfo("mapping_error", "no field 'so'", "map")


def test_claim_is_urgent_first_then_oldest(store: Store, clock: FakeClock) -> None:
    ids = {}
    for name, priority in [("n1", 0), ("k1", 1), ("h1", 3), ("t1", 2), ("n2", 0), ("h2", 3)]:
        ids[name] = ready(store, name, priority)
        clock.advance(1)
    claimed = store.claim("s", limit=10)
    assert [p.key for p in claimed] == ["h1", "h2", "t1", "k1", "n1", "n2"]
    assert store.claim("other", limit=10) == []  # all leased


def test_priority_four_is_stored_as_three(store: Store) -> None:
    package_id = ready(store, "flash-scheduled", priority=4)
    assert store.get(package_id).priority == 3


def test_retry_back_off_and_lease_expiry(store: Store, clock: FakeClock) -> None:
    package_id = ready(store, "rec-1")
    [claimed] = store.claim("s1", lease_seconds=30)
    error = ErrorInfo("hub_timeout", "no answer from the hub within 60 s", "send")
    retried = store.schedule_retry(claimed.id, error, clock.now + 120)
    assert retried.attempts == 1 and retried.lease_owner is None
    assert retried.last_error == error
    assert store.claim("s1") == []  # not due yet
    clock.advance(121)
    deferred = store.schedule_retry(
        store.claim("s1")[0].id,
        ErrorInfo("hub_unavailable", "connection refused"),
        clock.now + 10,
        count_attempt=False,
    )
    assert deferred.attempts == 1  # the hub being down costs no attempt
    clock.advance(11)

    assert store.claim("s1", lease_seconds=30)
    assert store.claim("s2") == []  # leased to s1
    clock.advance(31)  # s1 died: its lease runs out
    [taken_over] = store.claim("s2")
    assert taken_over.id == package_id and taken_over.lease_owner == "s2"
    store.release(package_id, "s1")  # a stale owner cannot release someone else's lease
    assert store.get(package_id).lease_owner == "s2"
    store.release(package_id, "s2", not_before=clock.now + 5)
    assert store.get(package_id).lease_owner is None
    assert store.claim("s3") == []
    events = [e.event for e in store.events(package_id)]
    assert events == ["ready", "retry_scheduled", "deferred"]


def test_failed_and_operator_retry(store: Store, clock: FakeClock) -> None:
    package_id = ready(store, "rec-1")
    store.claim("s")
    failed = store.mark_failed(package_id, ErrorInfo("hub_refused", "unknown recipient", "send"))
    assert failed.state is OutboundState.FAILED and failed.attempts == 1
    with pytest.raises(IllegalTransition):
        store.schedule_retry(package_id, ErrorInfo("x", "y"), clock.now)

    never_built = store.add_outbound(NewOutbound("rec-2", EDOC, record=record("rec-2"))).package
    store.mark_failed(never_built.id, ErrorInfo("seal_failed", "key unusable"))

    clock.advance(60)
    retried = store.retry_all_failed(actor="operator alice")
    assert {p.id: p.state for p in retried} == {
        package_id: OutboundState.READY,  # raw exists: the same bytes go out again
        never_built.id: OutboundState.ACCEPTED,  # nothing built yet: build again
    }
    again = store.get(package_id)
    assert again.attempts == 0 and again.last_error is None and again.next_attempt_at == clock.now
    assert store.events(package_id)[-1].event == "retry"
    assert "operator alice" in store.events(package_id)[-1].detail
    assert "hub_refused" in store.events(package_id)[-1].detail


def test_lease_exclusivity_across_threads(
    open_store: StoreOpener, cipher: AesGcmTestCipher
) -> None:
    seeding = open_store(cipher, clock=time.time)
    for n in range(120):
        ready(seeding, f"rec-{n}", priority=n % 4)
    # Two store objects on one file stand in for two processes; four threads each.
    stores = [seeding, open_store(cipher, clock=time.time)]
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(name: str, target: Store) -> None:
        barrier.wait()
        while batch := target.claim(name, limit=3, lease_seconds=300):
            with lock:
                claimed.extend((name, p.id) for p in batch)
            time.sleep(0.01)  # "sending": lets the other workers in

    threads = [threading.Thread(target=worker, args=(f"w{i}", stores[i % 2])) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = [package_id for _, package_id in claimed]
    assert len(ids) == 120 and len(set(ids)) == 120, sorted(ids)
    assert len({name for name, _ in claimed}) > 1, claimed


def test_inbound_idempotency_key(store: Store) -> None:
    raw = b"<edXML>from B</edXML>"
    new = NewInbound("hub-1", EDOC, raw, PackageFacts(document_id=DOC_ID, sender=B))
    first = store.add_inbound(new)
    assert first.outcome is AddOutcome.CREATED
    assert first.package.state is InboundState.RECEIVED
    assert first.package.key == f"{B}|{DOC_ID}|edoc|{first.package.content_hash}"

    listed_again = store.add_inbound(
        NewInbound("hub-2", EDOC, raw, PackageFacts(document_id=DOC_ID, sender=B))
    )
    assert listed_again.outcome is AddOutcome.EXISTING
    assert listed_again.package.id == first.package.id
    assert "hub-2" in store.events(first.package.id)[-1].detail
    assert store.find_inbound_by_hub_id("hub-1") == first.package
    assert store.find_inbound_by_hub_id("hub-9") is None

    # Same document, another kind or other content: other packages.
    status = store.add_inbound(
        NewInbound("hub-3", STATUS, raw, PackageFacts(document_id=DOC_ID, sender=B))
    )
    changed = store.add_inbound(
        NewInbound("hub-4", EDOC, raw + b" ", PackageFacts(document_id=DOC_ID, sender=B))
    )
    assert status.outcome is changed.outcome is AddOutcome.CREATED
    # The daemon may hash the verified content instead of the wire bytes.
    rewrapped = store.add_inbound(
        NewInbound(
            "hub-5",
            EDOC,
            b"<other wrapping/>",
            PackageFacts(document_id=DOC_ID, sender=B),
            content_hash="c0ffee",
        )
    )
    same = store.add_inbound(
        NewInbound(
            "hub-6",
            EDOC,
            b"<yet another/>",
            PackageFacts(document_id=DOC_ID, sender=B),
            content_hash="c0ffee",
        )
    )
    assert same.package.id == rewrapped.package.id


def test_inbound_lifecycle_and_resume_after_restart(
    open_store: StoreOpener, cipher: AesGcmTestCipher, clock: FakeClock
) -> None:
    store = open_store(cipher)

    def receive(hub_id: str, kind: PackageKind = EDOC, priority: int = 0) -> int:
        new = NewInbound(hub_id, kind, hub_id.encode(), PackageFacts(sender=B, priority=priority))
        clock.advance(1)
        return store.add_inbound(new).package.id

    received = receive("h-received")
    delivered = receive("h-delivered")
    for state in (InboundState.VERIFIED, InboundState.DELIVERED):
        store.transition(delivered, state)
    done = receive("h-done")
    notice = store.add_outbound(
        NewOutbound(
            "notice-01:h-done",
            STATUS,
            OutboundState.READY,
            raw=b"<status 01/>",
            facts=PackageFacts(document_id=DOC_ID, sender=A, recipients=(B,), status_code="01"),
            related_id=done,
        )
    ).package
    for state in (InboundState.VERIFIED, InboundState.DELIVERED, InboundState.ACKNOWLEDGED):
        store.transition(done, state)
    store.transition(
        done,
        InboundState.NOTIFIED,
        related_id=notice.id,
        detail=f"status 01 queued as #{notice.id}",
    )
    status_done = receive("h-status", STATUS)
    for state in (InboundState.VERIFIED, InboundState.DELIVERED, InboundState.ACKNOWLEDGED):
        store.transition(status_done, state)
    with pytest.raises(IllegalTransition):
        store.transition(status_done, InboundState.NOTIFIED)
    rejected = receive("h-bad")
    store.transition(
        rejected,
        InboundState.REJECTED,
        error=ErrorInfo("signature_invalid", "the package signature does not verify"),
    )
    urgent = receive("h-urgent", priority=3)
    store.close()  # the crash

    reopened = open_store(cipher)
    resume = reopened.to_resume(Direction.INBOUND)
    assert [p.id for p in resume] == [urgent, received, delivered, rejected]
    assert reopened.get(rejected).last_error == ErrorInfo(
        "signature_invalid", "the package signature does not verify"
    )
    assert reopened.get(done).related_id == notice.id
    assert reopened.raw(delivered) == b"h-delivered"
    assert [p.id for p in reopened.to_resume(Direction.OUTBOUND)] == [notice.id]
    reopened.close()


def test_inbound_failure_and_retry(store: Store) -> None:
    package = store.add_inbound(NewInbound("hub-1", EDOC, b"<x/>")).package
    store.transition(package.id, InboundState.VERIFIED)
    failed = store.mark_failed(package.id, ErrorInfo("mapping_error", "no reverse mapping"))
    assert failed.state is InboundState.FAILED
    assert store.retry(package.id).state is InboundState.RECEIVED


def test_recipient_statuses(store: Store) -> None:
    package_id = ready(store, "rec-1")
    other = ready(store, "rec-2", raw=b"<update/>")
    store.mark_sent(package_id, "hub-1")
    assert [p.id for p in store.find_outbound_documents(DOC_ID, B)] == [other, package_id]
    assert store.find_outbound_documents(DOC_ID, "000.00.99.H12") == []

    assert store.apply_status(package_id, B, "01").applied
    accepted = store.apply_status(package_id, B, "03", source="status package hub-9")
    assert accepted.applied and accepted.current is RecipientState.ACCEPTED
    late = store.apply_status(package_id, B, "01")  # a late 01 does not move it back
    assert not late.applied and late.current is RecipientState.ACCEPTED
    repeated = store.apply_status(package_id, B, "03")
    assert not repeated.applied and "already" in repeated.note
    rejected = store.apply_status(package_id, C, "02", description="thiếu chữ ký")
    assert rejected.current is RecipientState.REJECTED
    stranger = store.apply_status(package_id, "000.00.99.H12", "01")
    assert not stranger.applied and "not a recipient" in stranger.note
    with pytest.raises(PermanentError):
        store.apply_status(package_id, B, "07")

    states = {
        r.organ_id: (r.state, r.status_code, r.description) for r in store.recipients(package_id)
    }
    assert states == {
        B: (RecipientState.ACCEPTED, "03", None),
        C: (RecipientState.REJECTED, "02", "thiếu chữ ký"),
    }
    details = [e.detail for e in store.events(package_id) if e.event.startswith("status_")]
    assert any("kept ACCEPTED" in d for d in details)
    assert any("thiếu chữ ký" in d for d in details)


def test_a_failing_seal_leaves_no_half_transition(open_store: StoreOpener) -> None:
    class BrokenCipher(PlaintextCipherForTests):
        def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
            if data.startswith(b"<edXML"):
                raise RuntimeError("key unavailable")
            return data

    store = open_store(BrokenCipher())
    package = store.add_outbound(NewOutbound("rec-1", EDOC, record=record())).package
    with pytest.raises(RuntimeError):
        store.mark_ready(package.id, b"<edXML/>", facts())
    assert store.get(package.id).state is OutboundState.ACCEPTED
    assert [e.event for e in store.events(package.id)] == ["accepted"]
    assert store.recipients(package.id) == []
    store.close()


def test_without_a_key_metadata_is_readable_but_payloads_are_not(
    store: Store, open_store: StoreOpener
) -> None:
    package_id = ready(store, "rec-1")
    metadata_only = open_store(None)
    assert metadata_only.get(package_id).key == "rec-1"
    with pytest.raises(ConfigurationError, match="at-rest key"):
        metadata_only.raw(package_id)
    with pytest.raises(ConfigurationError):
        metadata_only.add_outbound(NewOutbound("rec-2", EDOC, record=record("rec-2")))
    metadata_only.close()


def test_counts_and_outbox_metrics(store: Store, clock: FakeClock) -> None:
    assert store.oldest_outbox_age() is None
    first = store.add_outbound(NewOutbound("rec-1", EDOC, record=record())).package
    clock.advance(30)
    sent = ready(store, "rec-2")
    store.mark_sent(sent, "hub-1")
    late = store.add_outbound(
        NewOutbound(
            "rec-3",
            EDOC,
            OutboundState.READY,
            raw=b"<x/>",
            facts=PackageFacts(deadline_at=clock.now + 10),
        )
    ).package
    store.add_inbound(NewInbound("hub-9", EDOC, b"<in/>"))
    clock.advance(20)
    assert store.oldest_outbox_age() == 50.0
    assert store.count_past_deadline() == 1
    store.mark_failed(late.id, ErrorInfo("hub_refused", "no"))
    assert store.count_past_deadline() == 1  # failed is still not sent
    assert state_mapping(store.counts()) == {
        ("in", "edoc", "RECEIVED"): 1,
        ("out", "edoc", "ACCEPTED"): 1,
        ("out", "edoc", "FAILED"): 1,
        ("out", "edoc", "SENT"): 1,
    }
    assert first.id in [p.id for p in store.find(states=[OutboundState.ACCEPTED])]
    assert [p.key for p in store.find(direction=Direction.OUTBOUND, limit=2)] == ["rec-3", "rec-2"]
