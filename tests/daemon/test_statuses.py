"""Status packages: the automatic 01/02 replies (signed, queued once) and incoming statuses
applied to the tracking of the document and recipient they report on. Real parts: agencies A
and B built in this process on the demo PKI, their stores and the hub emulator."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from connector.daemon import outbound, sender, statuses
from connector.daemon.retry import DependencyBackoff
from connector.daemon.wiring import Runtime
from connector.edxml import parse_package
from connector.edxml.model import (
    EdocPackage,
    Organization,
    ResponseFor,
    StatusCode,
    StatusPackage,
)
from connector.store.api import NewInbound, PackageFacts, TrackedPackage
from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from connector.timeutil import now_vn
from tests.e2e.harness import A_ID, B_ID, EXAMPLES, World
from tests.e2e.inprocess import daemon_pki, runtime, status_notices, world  # noqa: F401

C_ID = "000.00.33.H12"


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


def _prepared(world: World, a: Runtime, name: str) -> tuple[TrackedPackage, bytes]:  # noqa: F811
    """A's package for an example record, built by A's real pipeline (READY)."""
    world.a.drop_record(world.json_record(name))
    (item,) = a.services.intake.fetch(1, 5.0)
    outbound.handle(a.services, item)
    package = a.services.store.find(direction=Direction.OUTBOUND, limit=1)[0]
    raw = a.services.store.raw(package.id)
    assert raw is not None
    return package, raw


def _received(b: Runtime, raw: bytes, hub_id: str = "hub-1") -> TrackedPackage:
    return b.services.store.add_inbound(
        NewInbound(
            hub_id=hub_id,
            kind=PackageKind.EDOC,
            raw=raw,
            facts=PackageFacts(sender=A_ID, recipients=(B_ID,)),
        )
    ).package


def test_01_is_signed_addressed_to_the_sender_and_queued_once(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    _, raw = _prepared(world, a, "02-urgent.json")
    inbound = _received(b, raw)
    document = statuses.parse_stored(b.services, inbound)
    assert isinstance(document, EdocPackage)

    for _ in range(2):  # e.g. a crash before the inbound package was marked NOTIFIED
        statuses.queue_reply(b.services, document, inbound, StatusCode.ARRIVED, "Đã đến")
    (notice,) = status_notices(b)
    assert notice.state is OutboundState.READY and notice.related_id == inbound.id
    assert notice.priority == document.priority >= 2, "an urgent document's 01 is urgent too"
    assert [r.organ_id for r in b.services.store.recipients(notice.id)] == [A_ID]
    assert len(world.b.events("outbound.ready")) == 1

    signed = b.services.store.raw(notice.id)
    assert signed is not None
    status = parse_package(a.services.verifier.verify(signed).data)  # A can verify B's seal
    assert isinstance(status, StatusPackage)
    assert status.status_code is StatusCode.ARRIVED and status.from_.organ_id == B_ID
    assert status.response_for.organ_id == A_ID
    assert status.response_for.document_id == document.document_id
    assert status.response_for.code == str(document.code)


def test_02_carries_the_reason_code_and_our_words_when_the_package_says_what_it_was(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    package, raw = _prepared(world, a, "01-ordinary.json")
    tampered = raw.replace(b"<edXML:Subject>V/v", b"<edXML:Subject>V/V")
    assert tampered != raw
    inbound = _received(b, tampered)
    assert statuses.parse_stored(b.services, inbound) is None, "tampered bytes were trusted"

    statuses.queue_rejection(b.services, inbound, tampered, "signature_invalid")
    (notice,) = status_notices(b)
    assert notice.status_code == "02" and notice.document_id == package.document_id
    signed = b.services.store.raw(notice.id)
    assert signed is not None
    status = parse_package(signed)
    assert isinstance(status, StatusPackage)
    assert status.description == (
        "Từ chối tiếp nhận (signature_invalid): chữ ký số trên gói tin không hợp lệ"
    )
    assert status.response_for.organ_id == A_ID


@pytest.mark.parametrize("what", ["not XML", "a status package"])
def test_no_02_when_the_package_does_not_say_which_document_it_was(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
    what: str,
) -> None:
    if what == "not XML":
        raw = b"\x00garbage"
    else:
        world.a.drop_command(
            "LENH-1",
            (EXAMPLES / "qlvb-json" / "20-command-accepted.json").read_bytes(),
        )
        (item,) = a.services.intake.fetch(1, 5.0)
        outbound.handle(a.services, item)
        (status,) = a.services.store.find(direction=Direction.OUTBOUND, limit=1)
        stored = a.services.store.raw(status.id)
        assert stored is not None
        raw = stored
    inbound = _received(b, raw, hub_id=hashlib.sha256(raw).hexdigest())
    statuses.queue_rejection(b.services, inbound, raw, "không đọc được")
    assert not status_notices(b)


def _sent_to_b(world: World, a: Runtime) -> TrackedPackage:  # noqa: F811
    package, _ = _prepared(world, a, "03-attachments.json")  # to B and C
    sender.send_round(a.services, DependencyBackoff(a.services.retry))
    sent = a.services.store.get(package.id)
    assert sent.state is OutboundState.SENT
    return sent


def _status(code: StatusCode, document_id: str, reporter: str = B_ID) -> StatusPackage:
    return StatusPackage(
        from_=Organization(reporter, organ_name=reporter),
        response_for=ResponseFor(organ_id=A_ID, document_id=document_id),
        status_code=code,
        timestamp=now_vn(),
        description=f"trạng thái {code.value}",
    )


def _recipient_states(a: Runtime, package_id: int) -> dict[str, RecipientState]:
    return {r.organ_id: r.state for r in a.services.store.recipients(package_id)}


def test_incoming_statuses_move_the_reporting_recipient_forward_only(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    document = _sent_to_b(world, a)
    assert _recipient_states(a, document.id) == {
        B_ID: RecipientState.SENT,
        C_ID: RecipientState.SENT,
    }

    statuses.apply_incoming(a.services, _status(StatusCode.ACCEPTED, document.document_id))
    assert _recipient_states(a, document.id)[B_ID] is RecipientState.ACCEPTED
    # A 01 arriving after the 03 (statuses overtake each other on the way) moves nothing back.
    statuses.apply_incoming(a.services, _status(StatusCode.ARRIVED, document.document_id))
    assert _recipient_states(a, document.id)[B_ID] is RecipientState.ACCEPTED
    statuses.apply_incoming(a.services, _status(StatusCode.FINISHED, document.document_id))
    # C's own statuses concern C only.
    statuses.apply_incoming(a.services, _status(StatusCode.REJECTED, document.document_id, C_ID))
    assert _recipient_states(a, document.id) == {
        B_ID: RecipientState.FINISHED,
        C_ID: RecipientState.REJECTED,
    }
    recorded = [e.event for e in a.services.store.events(document.id)]
    assert {"status_03", "status_06", "status_02"} <= set(recorded)


def test_status_about_an_unknown_document_is_recorded_not_an_error(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    document = _sent_to_b(world, a)
    statuses.apply_incoming(a.services, _status(StatusCode.ACCEPTED, f"{A_ID},2020/01/01,1/XX"))
    assert _recipient_states(a, document.id)[B_ID] is RecipientState.SENT
