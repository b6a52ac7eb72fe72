"""Outbound intake: a local record becomes a sealed, encrypted, signed package in the store,
and only then is the record acknowledged. Real parts throughout: agency A's configuration,
demo PKI, spool folder and SQLite store, built in this process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator

import pytest

from connector.daemon import intake, outbound
from connector.daemon.adapters import VerifierAdapter
from connector.daemon.faults import InjectedFault
from connector.daemon.wiring import Runtime
from connector.edxml import parse_package, validate_package
from connector.edxml.model import EdocPackage, StatusPackage
from connector.errors import TransientError
from connector.local.spool import SpoolItem
from connector.store.api import TrackedPackage
from connector.store.states import Direction, OutboundState, PackageKind
from connector.timeutil import VN_TZ
from connector.trust import payload
from connector.trust.keys import load_certificate, load_private_key
from connector.trust.pdf_verify import verify_pdf
from connector.trust.truststore import SignerKind, TrustStore
from connector.workcalendar import WorkingCalendar
from tests.e2e.harness import A_ID, B_ID, EXAMPLES, World, drop, today
from tests.e2e.inprocess import daemon_pki, runtime, world  # noqa: F401


@pytest.fixture
def a(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.a)
    yield built
    built.close()


def _take(a: Runtime, count: int = 1) -> list[SpoolItem]:
    items = list(a.services.intake.fetch(10, 5.0))
    while len(items) < count:
        more = a.services.intake.fetch(10, 5.0)
        assert more, f"expected {count} records in the spool, got {len(items)}"
        items += more
    return items  # type: ignore[return-value]


def _only_package(a: Runtime) -> TrackedPackage:
    (package,) = a.services.store.find(direction=Direction.OUTBOUND, limit=10)
    return package


def test_record_becomes_sealed_encrypted_signed_package_then_is_acknowledged(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    record = world.json_record("01-ordinary.json")
    world.a.drop_record(record)
    (item,) = _take(a)
    outbound.handle(a.services, item)

    package = _only_package(a)
    assert package.state is OutboundState.READY and package.kind is PackageKind.EDOC
    assert package.key == record.record_id
    assert package.document_id == f"{A_ID},{today():%Y/%m/%d},{record.code}"
    assert [r.organ_id for r in a.services.store.recipients(package.id)] == [B_ID]
    assert not (world.a.spool / "outbound" / record.name).exists(), "record not acknowledged"
    (ready,) = world.a.events("outbound.ready")
    assert ready["package_id"] == package.id and ready["recipients"] == [B_ID]

    raw = a.services.store.raw(package.id)
    assert raw is not None and package.content_hash == hashlib.sha256(raw).hexdigest()
    assert validate_package(raw) == []
    trust = TrustStore.from_dirs(world.pki.trust_dir, world.pki.crl_dir)
    verified = VerifierAdapter(trust).verify(raw)
    assert verified.data and "XML signature valid" in verified.notes[0]
    model = parse_package(verified.data)
    assert isinstance(model, EdocPackage)
    # B's encryption certificate is known: every attachment travels encrypted for B.
    assert model.attachments and all(payload.is_encrypted(x) for x in model.attachments)
    pair = world.pki.agency(B_ID).encryption
    clear = payload.decrypt_attachments(
        model.attachments, load_private_key(pair.key), load_certificate(pair.cert)
    )
    report = verify_pdf(clear[0].data, trust)
    assert report.all_ok
    assert report.valid_of(SignerKind.PERSONAL), "the signer's own signature was kept"
    assert [s.organ_id for s in report.valid_of(SignerKind.ORGANISATION)] == [A_ID]


def test_secret_record_is_refused_before_packaging_and_dead_lettered(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    record = world.json_record("08-secret.json")
    world.a.drop_record(record)
    (item,) = _take(a)
    outbound.handle(a.services, item)

    package = _only_package(a)
    assert package.state is OutboundState.REFUSED
    assert package.last_error is not None and package.last_error.reason == "secret_document"
    assert a.services.store.raw(package.id) is None, "a secret record was packaged"
    failed = world.a.spool / "failed" / "outbound" / record.name
    assert failed.read_bytes() == record.data
    reason = json.loads((failed.parent / (record.name + ".reason.json")).read_text("utf-8"))
    assert reason["reason"] == "secret_document" and "R2" in reason["message"]
    (event,) = world.a.events("outbound.refused")
    assert event["reason"] == "secret_document" and event["local_id"] == record.record_id
    assert not world.a.events("outbound.ready")


def test_record_dropped_again_is_acknowledged_without_being_rebuilt(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    record = world.json_record("02-urgent.json")
    world.a.drop_record(record)
    outbound.handle(a.services, _take(a)[0])
    first = _only_package(a)
    raw = a.services.store.raw(first.id)

    world.a.drop_record(record)  # the agency software publishes it again
    outbound.handle(a.services, _take(a)[0])
    again = _only_package(a)
    assert again.id == first.id and a.services.store.raw(again.id) == raw
    assert not (world.a.spool / "outbound" / record.name).exists()
    assert "duplicate" in [e.event for e in a.services.store.events(first.id)]
    assert len(world.a.events("outbound.ready")) == 1


def test_crash_before_store_ready_keeps_the_record_and_is_resumed(world: World) -> None:  # noqa: F811
    def fault(point: str) -> None:
        if point == "before_store_ready":
            raise InjectedFault(point)

    crashed = runtime(world, world.a, fault_hook=fault)
    record = world.json_record("01-ordinary.json")
    world.a.drop_record(record)
    try:
        with pytest.raises(InjectedFault):
            outbound.handle(crashed.services, _take(crashed)[0])
        assert _only_package(crashed).state is OutboundState.ACCEPTED
    finally:
        crashed.close()
    assert (world.a.spool / "outbound" / record.name).exists(), "acknowledged before READY"

    restarted = runtime(world, world.a)
    try:
        assert outbound.resume_accepted(restarted.services) == 1
        package = _only_package(restarted)
        assert package.state is OutboundState.READY
        outbound.handle(restarted.services, _take(restarted)[0])  # the record, read again
        assert _only_package(restarted).id == package.id
        assert not (world.a.spool / "outbound" / record.name).exists()
    finally:
        restarted.close()


def test_workflow_command_becomes_status_package_to_the_document_sender(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    data = (EXAMPLES / "qlvb-json" / "20-command-accepted.json").read_bytes()
    drop(world.a.spool / "commands", "LENH-2025-000042.json", data)
    outbound.handle(a.services, _take(a)[0])

    package = _only_package(a)
    assert package.kind is PackageKind.STATUS and package.state is OutboundState.READY
    assert package.status_code == "03"
    assert package.document_id == "000.00.32.H12,2025/05/26,230/STC-HCSN"
    assert [r.organ_id for r in a.services.store.recipients(package.id)] == [B_ID]
    raw = a.services.store.raw(package.id)
    assert raw is not None
    status = parse_package(raw)
    assert isinstance(status, StatusPackage) and status.from_.organ_id == A_ID


def test_intake_loop_retries_a_record_whose_preparation_failed_for_now(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    class FlakySigner:
        def __init__(self, real: object) -> None:
            self.real, self.calls = real, 0

        def sign(self, data: bytes) -> bytes:
            self.calls += 1
            if self.calls == 1:
                raise TransientError("signing service busy", reason="busy")
            return self.real.sign(data)  # type: ignore[attr-defined,no-any-return]

    signer = FlakySigner(a.services.signer)
    services = dataclasses.replace(a.services, signer=signer)
    record = world.json_record("02-urgent.json")
    world.a.drop_record(record)
    stop = threading.Event()
    thread = threading.Thread(target=intake.intake_loop, args=(services, stop))
    thread.start()
    try:
        world.wait(
            "the record READY after a failed first attempt",
            lambda: [
                p
                for p in a.services.store.find(direction=Direction.OUTBOUND)
                if p.state is OutboundState.READY
            ],
            watch=(),
        )
    finally:
        stop.set()
        thread.join(10)
    assert signer.calls == 2
    assert not (world.a.spool / "outbound" / record.name).exists()
    assert _only_package(a).priority >= 2  # Thượng khẩn


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        (dt.date(2026, 11, 18), dt.date(2026, 11, 19)),  # Wednesday -> Thursday noon
        (dt.date(2026, 11, 20), dt.date(2026, 11, 23)),  # Friday -> Monday noon
        (dt.date(2026, 11, 21), dt.date(2026, 11, 23)),  # Saturday -> Monday noon
        (dt.date(2026, 4, 29), dt.date(2026, 5, 4)),  # before 30/4 and 1/5 -> Monday
    ],
)
def test_send_deadline_is_the_next_working_morning(signed: dt.date, expected: dt.date) -> None:
    calendar = WorkingCalendar.of(days_off=[dt.date(2026, 4, 30), dt.date(2026, 5, 1)],
                                  public_holidays=False)
    deadline = dt.datetime.fromtimestamp(outbound.send_deadline(signed, calendar), VN_TZ)
    assert deadline == dt.datetime.combine(expected, dt.time(12, 0), tzinfo=VN_TZ)


def test_record_id_reused_for_another_document_is_refused_not_dropped(
    world: World,  # noqa: F811
    a: Runtime,
) -> None:
    """The record id is the file name: ``01-ordinary.json`` and ``legacy-xml/01-ordinary.xml``
    are two documents under one id. The second must not be taken for a redelivery of the
    first (acknowledged, never sent): it is refused with the reason, kept for the operator."""
    first = world.json_record("01-ordinary.json")
    second = world.xml_record("01-ordinary.xml")
    drop(world.a.spool / "outbound", "01-ordinary.json", first.data)
    outbound.handle(a.services, _take(a)[0])
    drop(world.a.spool / "outbound" / "legacy-xml", "01-ordinary.xml", second.data)
    outbound.handle(a.services, _take(a)[0])

    package = _only_package(a)
    assert package.state is OutboundState.READY and package.document_id.endswith(first.code)
    kept = world.a.spool / "failed" / "outbound" / "legacy-xml" / "01-ordinary.xml"
    assert kept.read_bytes() == second.data
    reason = json.loads(kept.with_name("01-ordinary.xml.reason.json").read_text("utf-8"))
    assert reason["reason"] == "record_id_reused"
    (event,) = world.a.events("outbound.refused")
    assert event["reason"] == "record_id_reused" and event["local_id"] == "01-ordinary"
