"""Outbound intake: local records and workflow commands become signed packages in the store.

The stages run in a fixed order, each a plain call: classification gate and mapping →
attachments resolved (by the mapping) → PDF policy and organisation seal (worker pool) →
encryption per destination → build → validate against our XSD → XML signature → store
READY. Only then is the local record acknowledged. A refused record is stored REFUSED and
dead-lettered on the local side with its reason; a record whose key is already known is
acknowledged without being prepared again, so a package, once signed, never changes.

This module prepares packages; it must not talk to the hub (that is ``sender``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from connector.daemon import organisations
from connector.daemon.events import emit, error_fields, timed
from connector.daemon.ports import Services
from connector.daemon.retry import Fate, decide
from connector.edxml import build_package, parse_package, validate_package
from connector.edxml.model import EdocPackage, Package, StatusCode, StatusPackage
from connector.edxml.problems import EdxmlError
from connector.errors import (
    ConfigurationError,
    PermanentError,
    UnavailableError,
)
from connector.local.base import IntakeItem, LocalRecord, RecordKind
from connector.store.api import (
    AddOutcome,
    ErrorInfo,
    NewOutbound,
    PackageFacts,
    TrackedPackage,
)
from connector.store.states import IllegalTransition, OutboundState, PackageKind
from connector.workcalendar import WorkingCalendar

log = logging.getLogger("connector.outbound")

# The stored "record" of an automatic 01/02 built while its organisation's keys were out
# (``statuses``): the status package itself, unsigned; ``prepare`` signs it as it is.
NOTICE_CONTENT_TYPE = "application/vnd.edxml-status-unsigned+xml"


def facts_of(package: Package, calendar: WorkingCalendar | None = None) -> PackageFacts:
    if isinstance(package, StatusPackage):
        response = package.response_for
        # A recall request (13) goes to the document's recipients; every other status goes
        # back to the document's sender.
        return PackageFacts(
            document_id=response.document_id or "",
            sender=package.from_.organ_id,
            recipients=(response.organ_id,) if response.organ_id else (),
            code=response.code,
            status_code=package.status_code.value,
        )
    return PackageFacts(
        document_id=package.document_id,
        sender=package.from_.organ_id,
        recipients=tuple(t.organ_id for t in package.to),
        priority=package.priority,
        code=str(package.code),
        deadline_at=send_deadline(
            package.promulgation_info.promulgation_date, calendar or WorkingCalendar()
        ),
    )


def seal_and_sign(services: Services, package: Package) -> bytes:
    """The packaging stages after mapping, for documents and statuses alike."""
    if isinstance(package, EdocPackage):
        with timed(services, "pdf_seal"):
            sealed = services.offload(services.pdf.seal_outbound, package.attachments)
        # Each copy of the files is let go as soon as the next one exists (issue 13.6: a
        # 20 MB attachment must not stay in memory as mapped, sealed, encrypted and base64).
        package = dataclasses.replace(package, attachments=())
        with timed(services, "encrypt"):
            encrypted = services.crypto.encrypt_for(sealed, [t.organ_id for t in package.to])
        del sealed
        package = dataclasses.replace(package, attachments=encrypted)
        del encrypted
    with timed(services, "build"):
        recipients = [t.organ_id for t in package.to] if isinstance(package, EdocPackage) else []
        zip_it = bool(recipients) and all(services.zip_for(r) for r in recipients)
        raw = build_package(package, zip_attachments=zip_it)
        del package  # the files live on in raw only
        problems = validate_package(raw)
    if problems:
        raise EdxmlError(problems, reason="schema")
    with timed(services, "xml_sign"):
        return services.signer.sign(raw)


def prepare(services: Services, record: LocalRecord) -> tuple[bytes, PackageFacts, PackageKind]:
    # Several organisations: the one the record names acts (its mapping, keys, From).
    services, record = organisations.scope_record(services, record)
    if record.content_type == NOTICE_CONTENT_TYPE:
        return _sign_notice(services, record)
    with timed(services, "map"):
        try:
            if record.kind is RecordKind.COMMAND:
                package: Package = services.mapper.command_to_status(record)
            else:
                package = services.mapper.record_to_package(record)
        except RecursionError:
            raise PermanentError(
                f"record {record.record_id!r} nests too deeply to be read",
                reason="record_malformed",
                stage="map",
            ) from None
    acting = organisations.scope_package(services, record, package)
    kind = PackageKind.STATUS if isinstance(package, StatusPackage) else PackageKind.EDOC
    facts = facts_of(package, services.calendar)
    sender = package.from_.organ_id
    recall = (package if isinstance(package, StatusPackage)
              and package.status_code is StatusCode.RECALL_REQUEST else None)
    # Handed over, no reference kept here: seal_and_sign lets the mapped files go once
    # they are sealed (issue 13.6).
    handed_over = [package]
    del package
    try:
        raw = seal_and_sign(acting, handed_over.pop())
    except (UnavailableError, ConfigurationError) as exc:
        # Several organisations: one organisation's keys missing (a token out, a key file
        # unreadable) hold its own documents only.
        if services.organisations is None or isinstance(exc, organisations.OrganisationWaiting):
            raise
        raise organisations.OrganisationWaiting(sender, exc) from exc
    if recall is not None:
        facts = _recall_facts(services, recall, facts)
    return raw, facts, kind


def _sign_notice(services: Services, record: LocalRecord) -> Prepared:
    """An automatic 01/02 that waited for its organisation's keys: signed now, as it was
    built (its Timestamp stays the time of arrival)."""
    status = parse_package(record.body)
    if not isinstance(status, StatusPackage):
        raise PermanentError(f"stored notice {record.record_id!r} is not a status package",
                             reason="notice_malformed", stage="sign")
    facts = dataclasses.replace(facts_of(status), priority=record.priority)
    try:
        with timed(services, "xml_sign"):
            raw = services.signer.sign(record.body)
    except (UnavailableError, ConfigurationError) as exc:
        if services.organisations is None:
            raise
        raise organisations.OrganisationWaiting(status.from_.organ_id, exc) from exc
    return raw, facts, PackageKind.STATUS


def _recall_facts(services: Services, package: StatusPackage, facts: PackageFacts) -> PackageFacts:
    """A recall request (13) goes to the recipients of our document, and is tracked there."""
    documents = services.store.find_outbound_documents(package.document_id)
    if not documents:
        raise PermanentError(
            f"recall request (13) for {package.document_id!r}: no document with this id was "
            "sent by this connector",
            reason="unknown_document",
            stage="map",
        )
    recipients: list[str] = []
    for document in documents:
        for recipient in services.store.recipients(document.id):
            if recipient.organ_id not in recipients:
                recipients.append(recipient.organ_id)
            services.store.apply_status(
                document.id,
                recipient.organ_id,
                "13",
                description=package.description,
                source="local",
            )
    return dataclasses.replace(facts, recipients=tuple(recipients))


Prepared = tuple[bytes, PackageFacts, PackageKind]


def handle(services: Services, item: IntakeItem) -> None:
    """Take one local record through the outbound stages and settle it on the local side
    (one at a time; the intake worker runs the same stages with several in flight)."""
    package_id = admit(services, item)
    if package_id is None:
        return
    try:
        prepared = prepare(services, item.record)
    except PermanentError as exc:
        refuse(services, item, package_id, exc)
        return
    except organisations.OrganisationWaiting as exc:
        waits_for_keys(services, item, package_id, exc)
        return
    finish(services, item, package_id, prepared)


def admit(services: Services, item: IntakeItem) -> int | None:
    """Store a new record ACCEPTED and return its package id to prepare; None when the record
    is already settled here (refused unread, known, a redelivery)."""
    record = item.record
    kind = PackageKind.STATUS if record.kind is RecordKind.COMMAND else PackageKind.EDOC
    if record.refusal is not None:
        # The local side could not read it (too large, not a regular file, an unknown
        # encoding): refused as it is, never stored nor mapped.
        error = record.refusal
        services.metrics.refused_record(error.reason)
        services.metrics.document("outbound", "refused")
        log.warning("record %s refused (%s): %s", record.record_id, error.reason, error.message)
        item.dead_letter(error)
        emit(services, "outbound.refused", None, local_id=record.record_id,
             **error_fields(error))
        return None
    if not record.record_id.strip():
        error = PermanentError(
            f"record from {record.source or 'the local side'} has no id: give every record a "
            "unique id (file name, x-record-id header or the mapping's id field)",
            reason="record_id_missing",
            stage="intake",
        )
        services.metrics.refused_record(error.reason)
        item.dead_letter(error)
        emit(services, "outbound.refused", None, **error_fields(error))
        return None
    added = services.store.add_outbound(
        NewOutbound(
            local_id=record.record_id,
            kind=kind,
            record=record,
            detail=f"from {record.source}" if record.source else "",
        )
    )
    package = added.package
    if added.outcome is AddOutcome.EXISTING and package.state is not OutboundState.ACCEPTED:
        known = services.store.record(package.id)
        if known is not None and known.body != record.body:
            _refuse_reused_id(services, item, package)
            return None
        if package.state is OutboundState.REFUSED:
            # Refused before, and back unchanged: the dead letter may not have been written
            # (a crash or a lost connection in between), so it is written again.
            info = package.last_error
            error = PermanentError(
                info.message if info else "refused earlier",
                reason=info.reason if info else "refused",
                stage=info.stage if info else "intake",
            )
            log.info(
                "record %s was refused before (%s): dead-lettered again",
                record.record_id,
                error.reason,
            )
            item.dead_letter(error)
            return None
        # Already prepared (a redelivery after a crash, or a duplicate publish): the package
        # keeps the bytes it was signed with.
        log.info(
            "record %s is already known as package #%d (%s): acknowledged again",
            record.record_id,
            package.id,
            package.state.value,
        )
        item.ack()
        return None
    return package.id


def finish(services: Services, item: IntakeItem, package_id: int, prepared: Prepared) -> None:
    """A prepared record: READY in the store (the sender is rung), then acknowledged."""
    raw, facts, kind = prepared
    services.fault("before_store_ready")
    ready = services.store.mark_ready(package_id, raw, facts)
    services.sender_bell.ring()
    if kind is PackageKind.EDOC:  # several organisations: counted under its From too
        organisations.sending(services, facts.sender).metrics.document("outbound", "accepted")
    services.fault("after_store_ready")
    item.ack()
    emit(
        services,
        "outbound.ready",
        ready,
        recipients=list(facts.recipients),
        priority=facts.priority,
    )


def waits_for_keys(
    services: Services, item: IntakeItem, package_id: int, exc: organisations.OrganisationWaiting
) -> None:
    """Stored ACCEPTED with its record: it waits for its organisation's keys there
    (``waiting_keys``) and the records of the other organisations go on."""
    assert services.organisations is not None
    if exc.organ_id not in services.organisations.waiting:
        log.warning("%s; its documents wait in the store until it is back", exc.message)
    services.organisations.set_waiting(exc.organ_id, exc.message)
    services.store.add_event(package_id, "waiting_for_keys", exc.message[:500])
    item.ack()


def refuse(services: Services, item: IntakeItem, package_id: int, exc: PermanentError) -> None:
    """Refuse a record for good: REFUSED in the store, dead-lettered with the reason."""
    refused = services.store.mark_refused(package_id, ErrorInfo.of(exc))
    counted = organisations.for_record(services, item.record)  # under the organisation named
    counted.metrics.refused_record(exc.reason)
    counted.metrics.document("outbound", "refused")
    log.warning(
        "record %s refused (%s at %s): %s",
        item.record.record_id,
        exc.reason,
        exc.stage,
        exc.message,
    )
    item.dead_letter(exc)
    emit(services, "outbound.refused", refused, **error_fields(exc))


def _refuse_reused_id(services: Services, item: IntakeItem, package: TrackedPackage) -> None:
    """Another record under an id already taken: acknowledging it as a redelivery would drop
    a document silently, so it is refused (the tracked package is not touched)."""
    record_id = item.record.record_id
    error = PermanentError(
        f"record id {record_id!r} is already used by package #{package.id} "
        f"({package.state.value}) whose record has different content; give this record an "
        "id of its own (a correction of a sent document is an update or replacement record)",
        reason="record_id_reused",
        stage="intake",
    )
    services.metrics.refused_record(error.reason)
    log.warning("record %s refused: %s", record_id, error.message)
    item.dead_letter(error)
    emit(services, "outbound.refused", None, local_id=record_id, **error_fields(error))


def failed_attempt(
    services: Services, item: IntakeItem, error: BaseException, attempts: dict[str, int]
) -> None:
    """A record whose preparation failed (not for good): retry it, but not forever."""
    record_id = item.record.record_id
    decision = decide(error, attempts.get(record_id, 0), services.retry)
    if decision.fate is not Fate.FAIL or not isinstance(decision.error, PermanentError):
        attempts[record_id] = attempts.get(record_id, 0) + 1
        log.warning(
            "record %s not prepared this time (attempt %d): %s",
            record_id,
            attempts[record_id],
            error,
        )
        item.release()
        return
    attempts.pop(record_id, None)
    kind = PackageKind.STATUS if item.record.kind is RecordKind.COMMAND else PackageKind.EDOC
    package = services.store.add_outbound(
        NewOutbound(local_id=record_id, kind=kind, record=item.record)
    ).package
    refuse(services, item, package.id, decision.error)


def resume_accepted(services: Services) -> int:
    """Prepare packages left ACCEPTED by a crash whose local record was already settled."""
    resumed = 0
    for package in services.store.find(states=(OutboundState.ACCEPTED,), limit=1000):
        record = services.store.record(package.id)
        if record is None:
            continue
        try:
            raw, facts, _ = prepare(services, record)
        except PermanentError as exc:
            services.store.mark_refused(package.id, ErrorInfo.of(exc))
            continue
        except organisations.OrganisationWaiting as exc:  # started with its token out
            assert services.organisations is not None
            services.organisations.set_waiting(exc.organ_id, exc.message)  # waiting_keys
            services.metrics.set_component_up("keys", False)
            continue
        except Exception as exc:  # left ACCEPTED: tried again at the next start
            log.warning("package #%d not resumed: %s", package.id, exc)
            continue
        try:
            services.store.mark_ready(package.id, raw, facts)
        except IllegalTransition:  # another replica prepared it meanwhile
            continue
        resumed += 1
    return resumed


def send_deadline(signed_on: dt.date, calendar: WorkingCalendar) -> float:
    """R6: send the day it is signed, at the latest the next working morning (12:00 VN)."""
    return calendar.send_deadline(signed_on)
