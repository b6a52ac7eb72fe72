"""Status packages: the automatic 01 and 02 replies, and incoming statuses applied to tracking.

* On arrival of a document the connector itself answers "01 Đã đến"; on a package that fails
  authenticity or integrity it answers "02 Từ chối tiếp nhận" with the reason code and our
  own words for it (never text from the package), and only to a sender whose identity was
  established (``inbound`` decides). Both become
  outbound status packages in the store (READY), keyed so a crash never sends two. Serving
  several organisations, one whose keys are out (its token pulled) has its 01/02 stored
  ACCEPTED, unsigned, and signed when the keys are back (``waiting_keys``): the package it
  answers is still delivered and acknowledged, and the inbox goes on for everyone.
* An incoming status updates the per-recipient state of the document it reports on; a
  status about a document we do not know is recorded, not an error.
* Local workflow commands (03, 04, 05, 06, 02, 13, 15, 16) come in through the intake and are
  prepared by ``outbound``.

It queues and applies statuses; it must not talk to the hub or the local side directly.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from connector.daemon import organisations
from connector.daemon.events import emit
from connector.daemon.outbound import NOTICE_CONTENT_TYPE, facts_of, seal_and_sign
from connector.daemon.ports import Services
from connector.edxml import build_package, parse_package, validate_package
from connector.edxml.model import (
    EdocPackage,
    Package,
    ResponseFor,
    StatusCode,
    StatusPackage,
)
from connector.edxml.problems import EdxmlError
from connector.edxml.summary import peek
from connector.errors import ConfigurationError, ConnectorError, UnavailableError
from connector.local.base import LocalRecord, RecordKind
from connector.printable import printable
from connector.store.api import AddOutcome, NewOutbound, PackageFacts, TrackedPackage
from connector.store.states import OutboundState, PackageKind
from connector.timeutil import now_vn

log = logging.getLogger("connector.statuses")


def parse_stored(services: Services, package: TrackedPackage) -> Package | None:
    raw = services.store.raw(package.id)
    if raw is None:
        return None
    try:
        return parse_package(services.verifier.verify(raw).data)
    except ConnectorError:
        return None


def _queue(
    services: Services, status: StatusPackage, local_id: str, related: TrackedPackage, priority: int
) -> None:
    facts = dataclasses.replace(facts_of(status), priority=priority)
    registry = services.organisations
    organ_id = services.agency.organ_id
    waiting = registry.waiting.get(organ_id) if registry is not None else None
    if waiting is None:
        try:
            raw = seal_and_sign(services, status)
        except (UnavailableError, ConfigurationError) as exc:
            if registry is None:
                raise
            waiting = exc.message
    if waiting is not None:  # its organisation's keys are out: the notice waits, not the inbox
        _wait_for_keys(services, status, local_id, related, facts, waiting)
        return
    added = services.store.add_outbound(
        NewOutbound(
            local_id=local_id,
            kind=PackageKind.STATUS,
            state=OutboundState.READY,
            raw=raw,
            facts=facts,
            related_id=related.id,
            detail=f"status {status.status_code.value} for inbound #{related.id}",
        )
    )
    if added.outcome is AddOutcome.CREATED:
        emit(services, "outbound.ready", added.package, status_code=status.status_code.value)


def _wait_for_keys(services: Services, status: StatusPackage, local_id: str,
                   related: TrackedPackage, facts: PackageFacts, reason: str) -> None:
    """Several organisations, one whose keys are unavailable (its token out): the notice is
    stored ACCEPTED, built but unsigned, and signed by ``waiting_keys`` (through
    ``outbound.prepare``) once the keys are back, as that organisation's documents are. The
    inbound package it answers is finished meanwhile (delivered, acknowledged), and the inbox
    goes on for every organisation."""
    assert services.organisations is not None
    organ_id = services.agency.organ_id
    unsigned = build_package(status)
    problems = validate_package(unsigned)
    if problems:
        raise EdxmlError(problems, reason="schema")
    record = LocalRecord(
        record_id=local_id,
        body=unsigned,
        content_type=NOTICE_CONTENT_TYPE,
        kind=RecordKind.COMMAND,
        priority=facts.priority,
        source=f"status {status.status_code.value} for inbound #{related.id}",
        headers={organisations.RECORD_HEADER: organ_id},
    )
    added = services.store.add_outbound(
        NewOutbound(
            local_id=local_id,
            kind=PackageKind.STATUS,
            state=OutboundState.ACCEPTED,
            record=record,
            facts=facts,
            related_id=related.id,
            detail=f"status {status.status_code.value} for inbound #{related.id}, waiting "
                   "for its organisation's keys",
        )
    )
    if added.outcome is not AddOutcome.CREATED:
        return
    if organ_id not in services.organisations.waiting:
        log.warning("organisation %s: %s; its statuses wait in the store until it is back",
                    organ_id, reason)
    services.organisations.set_waiting(organ_id, reason)
    services.metrics.set_component_up("keys", False)
    services.store.add_event(added.package.id, "waiting_for_keys", reason[:500])


def queue_reply(
    services: Services,
    document: EdocPackage,
    inbound: TrackedPackage,
    code: StatusCode,
    description: str,
) -> None:
    status = StatusPackage(
        from_=services.agency,
        response_for=ResponseFor(
            organ_id=document.from_.organ_id,
            code=str(document.code),
            document_id=document.document_id,
            promulgation_date=document.promulgation_info.promulgation_date,
        ),
        status_code=code,
        timestamp=now_vn(),
        description=description,
    )
    _queue(services, status, f"notice-{code.value}:{inbound.id}", inbound, document.priority)


# What a 02 says, per reason code: our own words only. Messages of refusals quote the
# package (names, subjects of certificates an attacker may have chosen), so they never go
# into a 02; the operator reads them in the events.
REJECTION_TEXT = {
    "signature_invalid": "chữ ký số trên gói tin không hợp lệ",
    "signature_tampered": "văn bản đã bị thay đổi sau khi ký số",
    "document_modified": "văn bản đã bị thay đổi sau khi ký số",
    "personal_signature_missing": "văn bản chính thiếu chữ ký số của người có thẩm quyền",
    "organisation_signature_missing": "văn bản thiếu chữ ký số của cơ quan, tổ chức",
    "seal_organisation_mismatch": "chữ ký số của cơ quan không phải của cơ quan gửi",
    "main_document_not_pdf": "văn bản chính không phải tệp PDF có chữ ký số",
    "content_type_mismatch": "tệp đính kèm không đúng định dạng khai báo",
    "executable_content": "tệp đính kèm là chương trình thực thi",
    "cert_expired": "chứng thư số đã hết hạn",
    "cert_revoked": "chứng thư số đã bị thu hồi",
    "untrusted_root": "chứng thư số không do tổ chức cung cấp dịch vụ tin cậy cấp",
    "schema": "gói tin không đúng cấu trúc edXML",
    "pdf_unreadable": "tệp PDF bị hỏng, không kiểm tra được chữ ký số",
    "attachment_bad_zip": "tệp nén đính kèm bị hỏng",
    "attachment_zip_encrypted": "tệp nén đính kèm có mật khẩu, không kiểm tra được nội dung",
    "attachment_zip_bomb": "tệp nén đính kèm vượt giới hạn dung lượng cho phép",
    "attachment_zip_too_many": "tệp nén đính kèm chứa quá nhiều tệp",
    "attachment_zip_nested": "tệp nén đính kèm lồng nhau quá nhiều cấp",
}
_GENERIC_TEXT = "gói tin không đạt kiểm tra xác thực, toàn vẹn"
_REASON_CODE = re.compile(r"^[a-z0-9_]{1,40}$")


def rejection_text(reason: str) -> str:
    """The Description of a 02: the reason code and our own words for it."""
    code = reason if _REASON_CODE.match(reason) else "rejected"
    return f"Từ chối tiếp nhận ({code}): {REJECTION_TEXT.get(code, _GENERIC_TEXT)}"


def queue_rejection(services: Services, inbound: TrackedPackage, raw: bytes, reason: str) -> None:
    """Status 02 for a package we could not accept (``reason`` is its reason code), when we
    can tell what it was. Callers send it only to a sender whose identity was established."""
    try:
        summary = peek(raw)
    except ConnectorError:
        log.warning("inbound #%d is too broken to answer with a 02 (no DocumentId)", inbound.id)
        return
    if summary.kind != "edoc" or not summary.document_id:
        return
    status = StatusPackage(
        from_=services.agency,
        response_for=ResponseFor(organ_id=summary.from_organ_id, document_id=summary.document_id),
        status_code=StatusCode.REJECTED,
        timestamp=now_vn(),
        description=rejection_text(reason),
    )
    _queue(services, status, f"notice-02:{inbound.id}", inbound, summary.priority)


def apply_incoming(services: Services, status: StatusPackage) -> None:
    """Update the tracking of the document and recipient a received status reports on."""
    document_id = status.response_for.document_id or ""
    reporter = status.from_.organ_id
    shown_reporter, shown_id = printable(reporter, 100), printable(document_id, 200)
    documents = services.store.find_outbound_documents(document_id, reporter)
    if services.organisations is not None:  # matched per organisation: the one it reached
        documents = [d for d in documents if d.sender == services.agency.organ_id]
    if not documents:
        log.info(
            "status %s from %s about unknown document %s: recorded only",
            status.status_code.value,
            shown_reporter,
            shown_id,
        )
        return
    for document in documents:
        outcome = services.store.apply_status(
            document.id,
            reporter,
            status.status_code.value,
            description=status.description,
            source="hub",
        )
        if not outcome.applied:
            log.info(
                "status %s from %s for #%d not applied: %s",
                status.status_code.value,
                shown_reporter,
                document.id,
                outcome.note,
            )
