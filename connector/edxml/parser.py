"""Tolerant edXML reader: untrusted bytes -> the typed model.

Receive level: only what the connector needs to authenticate, route, decrypt and map back a
package is refused when missing or unreadable (``connector.edxml.conformance.RECEIVE_NEEDS``);
any other missing or unreadable field is left empty in the model (the schema pass of
``check_package`` reports it as a warning). Namespace-aware and prefix-agnostic (matches
namespace URI + local name), insensitive to child order, and tolerant of what real peers
send (see the spec's "Tolerance": stray bytes, ``OrganInCharge``, ``Business…``, three
date formats, empty ``ResponseFor``, UUID DocumentIds, ``cid:`` with or without prefix,
zipped attachments). Every problem is collected with its line and path, and all of them
are reported at once.

It reads; it must not validate against the XSD (``schema``) or write XML (``builder``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from lxml import etree
from lxml.etree import _Element

from connector import timeutil
from connector.edxml import attachments as att
from connector.edxml.model import (
    NS,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    LegacySignature,
    Organization,
    OtherInfo,
    Package,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
)
from connector.edxml.parse_attachments import read_attachments
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.reader import Reader
from connector.edxml.xmlsafe import DEFAULT_LIMITS, XmlLimits, parse_untrusted


def _int(value: str) -> int:
    return int(value.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(value)


def _date(value: str) -> dt.date:
    """QCVN's forms, or ISO 8601 as xs:date/xs:dateTime writers put it (the date as written)."""
    try:
        return timeutil.parse_date(value)
    except ValueError:
        return _iso(value).date()


def _timestamp(value: str) -> dt.datetime:
    """QCVN's forms, or ISO 8601; a time without a zone is Vietnam time, as QCVN's are."""
    try:
        return timeutil.parse_timestamp(value)
    except ValueError:
        moment = _iso(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timeutil.VN_TZ)
        return moment.astimezone(timeutil.VN_TZ)


def _iso(value: str) -> dt.datetime:
    cleaned = value.strip()
    if not _ISO.match(cleaned):  # fromisoformat alone also reads forms no peer writes
        raise ValueError(f"{value!r} is not a date")
    return dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00"))


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$")


def _priority(value: str) -> Priority:
    return Priority(int(value))


def parse_package(
    data: bytes,
    *,
    limits: XmlLimits = DEFAULT_LIMITS,
    attachment_limits: att.AttachmentLimits = att.DEFAULT_ATTACHMENT_LIMITS,
) -> Package:
    """Parse edXML bytes (edoc or status) into the model, or raise ``EdxmlError``."""
    root = parse_untrusted(data, limits)
    return parse_element(root, attachment_limits=attachment_limits)


def parse_element(
    root: _Element, *, attachment_limits: att.AttachmentLimits = att.DEFAULT_ATTACHMENT_LIMITS
) -> Package:
    reader = Reader()
    qname = etree.QName(root)
    if qname.localname != "edXML" or qname.namespace != NS:
        got = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise EdxmlError(
            [
                Problem(
                    f"root element is {got}, expected edXML in namespace {NS}",
                    path="/" + qname.localname,
                    line=root.sourceline,
                    element=qname.localname,
                    reason="wrong_namespace",
                )
            ]
        )
    envelope = reader.child(root, "edXMLEnvelope")
    header = reader.child(envelope, "edXMLHeader")
    message = reader.child(header, "MessageHeader")
    if message is None:
        raise EdxmlError(
            [
                Problem(
                    "edXMLEnvelope/edXMLHeader/MessageHeader is missing",
                    path=reader.path(
                        header if header is not None else envelope if envelope is not None else root
                    ),
                    line=root.sourceline,
                    element="MessageHeader",
                    reason="missing_field",
                )
            ]
        )
    if _is_status(reader, message):
        package: Package | None = _status(reader, message)
    else:
        package = _edoc(reader, root, header, message, attachment_limits)
    if reader.problems or package is None:
        raise EdxmlError(reader.collected("problems"))
    if reader.warnings:
        package = dataclasses.replace(package, deviations=tuple(reader.collected("warnings")))
    return package


def _is_status(reader: Reader, message: _Element) -> bool:
    """A status has a StatusCode; one that lost it still has a ResponseFor and no To/Code."""
    if reader.child(message, "StatusCode") is not None:
        return True
    return (
        reader.child(message, "ResponseFor") is not None
        and not reader.children(message, "To")
        and reader.child(message, "Code") is None
    )


def _organization(reader: Reader, element: _Element) -> Organization:
    return Organization(
        organ_id=reader.text(element, "OrganId", required=True) or "",
        organization_in_charge=reader.text(element, "OrganizationInCharge"),
        organ_name=reader.text(element, "OrganName"),
        organ_add=reader.text(element, "OrganAdd"),
        email=reader.text(element, "Email"),
        telephone=reader.text(element, "Telephone"),
        fax=reader.text(element, "Fax"),
        website=reader.text(element, "Website"),
    )


def _required_child(reader: Reader, parent: _Element, name: str) -> _Element | None:
    element = reader.child(parent, name)
    if element is None:
        reader.problem(
            parent, f"required element {name} is missing", name=name, reason="missing_field"
        )
    return element


def _response_for(reader: Reader, element: _Element) -> ResponseFor:
    return ResponseFor(
        organ_id=reader.text(element, "OrganId"),
        code=reader.text(element, "Code"),
        document_id=reader.text(element, "DocumentId"),
        promulgation_date=reader.convert(
            element, "PromulgationDate", _date, "a date (yyyy/MM/dd)"
        ),
    )


def _staff(reader: Reader, element: _Element | None) -> StaffInfo | None:
    if element is None:
        return None
    return StaffInfo(
        department=reader.text(element, "Department"),
        staff=reader.text(element, "Staff"),
        email=reader.text(element, "Email"),
        mobile=reader.text(element, "Mobile"),
    )


def _status(reader: Reader, message: _Element) -> StatusPackage | None:
    from_el = _required_child(reader, message, "From")
    sender = _organization(reader, from_el) if from_el is not None else None
    response_el = _required_child(reader, message, "ResponseFor")
    code = reader.convert(
        message, "StatusCode", StatusCode, "a status code (01-06, 13, 15, 16)", required=True
    )
    timestamp = reader.convert(
        message, "Timestamp", _timestamp, "a timestamp (yyyy/MM/dd HH:mm:ss)"
    )
    response = _response_for(reader, response_el) if response_el is not None else None
    if response is not None and not response.document_id:
        reader.problem(
            response_el,
            "required element DocumentId is missing or empty",
            name="DocumentId",
            reason="missing_field",
        )
    if sender is None or not sender.organ_id or response is None or code is None:
        return None
    return StatusPackage(
        from_=sender,
        response_for=response,
        status_code=code,
        timestamp=timestamp,
        staff_info=_staff(reader, reader.child(message, "StaffInfo")),
        description=reader.text(message, "Description"),
    )


def _edoc(
    reader: Reader,
    root: _Element,
    header: _Element | None,
    message: _Element,
    limits: att.AttachmentLimits,
) -> EdocPackage | None:
    from_el = _required_child(reader, message, "From")
    sender = _organization(reader, from_el) if from_el is not None else None
    to_els = _recipients(reader, message)
    document_id = reader.text(message, "DocumentId", required=True)
    code_el = _required_child(reader, message, "Code")
    code_number = reader.text(code_el, "CodeNumber") or ""
    code_notation = reader.text(code_el, "CodeNotation") or ""
    if code_el is not None and not (code_number or code_notation):
        reader.problem(
            code_el,
            "Code has neither CodeNumber nor CodeNotation: the document cannot be named "
            "in the answer to its sender",
            name="CodeNumber",
            reason="missing_field",
        )
    prom_el = reader.child(message, "PromulgationInfo")
    prom_date = _promulgation_date(reader, message, prom_el, document_id)
    type_el = reader.child(message, "DocumentType")
    doc_type = reader.convert(type_el, "Type", _int, "1 or 2")
    type_name = reader.text(type_el, "TypeName") or ""
    subject = reader.text(message, "Subject") or ""
    signer_el = reader.child(message, "SignerInfo")
    other = _other_info(reader, reader.child(message, "OtherInfo"))
    steering = reader.convert(
        message, "SteeringType", lambda v: SteeringType(int(v)), "a steering type (1, 2 or 3)"
    )
    responses = tuple(
        r
        for r in (_response_for(reader, el) for el in reader.children(message, "ResponseFor"))
        if not r.is_empty
    )
    trace_list = reader.child(header, "TraceHeaderList")
    traces = tuple(
        TraceHeader(
            organ_id=reader.text(el, "OrganId") or "",
            timestamp=reader.convert(
                el, "Timestamp", _timestamp, "a timestamp (yyyy/MM/dd HH:mm:ss)"
            ),
        )
        for el in reader.children(trace_list, "TraceHeader")
    )
    business = _business(reader, reader.child(trace_list, "Bussiness"))
    attachments = read_attachments(reader, root, limits)
    legacy = _legacy_signature(reader, header)
    if (
        sender is None
        or not sender.organ_id
        or not to_els
        or code_el is None
        or not (code_number or code_notation)
        or document_id is None
        or prom_date is None
    ):
        return None
    return EdocPackage(
        from_=sender,
        to=tuple(_organization(reader, el) for el in to_els),
        document_id=document_id,
        code=Code(code_number, code_notation),
        promulgation_info=PromulgationInfo(reader.text(prom_el, "Place"), prom_date),
        document_type=DocumentType(doc_type, type_name, reader.text(type_el, "TypeDetail")),
        subject=subject,
        content=reader.text(message, "Content"),
        signer_info=SignerInfo(
            competence=reader.text(signer_el, "Competence"),
            position=reader.text(signer_el, "Position"),
            full_name=reader.text(signer_el, "FullName"),
        )
        if signer_el is not None
        else None,
        due_date=reader.convert(message, "DueDate", _date, "a date (yyyy/MM/dd)"),
        other_info=other,
        response_for=responses,
        steering_type=steering,
        to_places=tuple(
            (el.text or "").strip()
            for el in reader.children(reader.child(message, "ToPlaces"), "Place")
            if (el.text or "").strip()
        ),
        trace_headers=traces,
        business=business,
        attachments=attachments,
        legacy_signature=legacy,
    )


def _recipients(reader: Reader, message: _Element) -> list[_Element]:
    """The To elements that name an OrganId; one without is a warning, none at all refused."""
    to_els = reader.children(message, "To")
    usable = []
    for el in to_els:  # one pass: a membership test per To was quadratic in the To count
        if reader.text(el, "OrganId"):
            usable.append(el)
        else:
            reader.warn(el, "a To without OrganId cannot be routed: ignored", name="OrganId")
    if not usable:
        reader.problem(
            message,
            "no To (recipient) with an OrganId: the package cannot be routed",
            name="To",
            reason="missing_field",
        )
    return usable


_DOCUMENT_ID_DATE = re.compile(r"^[^,]+,(\d{4}/\d{2}/\d{2}),")


def _promulgation_date(
    reader: Reader, message: _Element, prom_el: _Element | None, document_id: str | None
) -> dt.date | None:
    """PromulgationDate, or the date a composite DocumentId carries (the same date by
    definition of DocumentId); refused when neither says when the document was issued."""
    date = reader.convert(prom_el, "PromulgationDate", _date, "a date")
    if date is not None:
        return date
    match = _DOCUMENT_ID_DATE.match(document_id or "")
    if match:
        try:
            date = timeutil.parse_date(match.group(1))
        except ValueError:
            date = None
    if date is not None:
        reader.warn(
            prom_el if prom_el is not None else message,
            f"PromulgationDate missing or unreadable: the date of DocumentId ({date:%Y/%m/%d}) "
            "is used",
            name="PromulgationDate",
        )
        return date
    if document_id is not None:
        reader.problem(
            prom_el if prom_el is not None else message,
            "no readable PromulgationDate and no date in DocumentId: when the document was "
            "issued is unknown",
            name="PromulgationDate",
            reason="missing_field",
        )
    return None


def _other_info(reader: Reader, element: _Element | None) -> OtherInfo:
    if element is None:
        return OtherInfo()
    appendixes = tuple(
        (el.text or "").strip()
        for el in reader.children(reader.child(element, "Appendixes"), "Appendix")
        if (el.text or "").strip()
    )
    priority = reader.convert(element, "Priority", _priority, "a priority (0-4)")
    if priority is None and reader.text(element, "Priority") is not None:
        reader.warn(
            reader.child(element, "Priority"),
            "Priority outside QCVN's list (0-4): treated as 0 (Thường)",
        )
    return OtherInfo(
        priority=priority or Priority.NORMAL,
        sphere_of_promulgation=reader.text(element, "SphereOfPromulgation"),
        typer_notation=reader.text(element, "TyperNotation"),
        promulgation_amount=reader.convert(element, "PromulgationAmount", _int, "a number"),
        page_amount=reader.convert(element, "PageAmount", _int, "a number"),
        direction=bool(reader.convert(element, "Direction", _bool, "true or false")),
        appendixes=appendixes,
    )


def _business(reader: Reader, element: _Element | None) -> Business | None:
    if element is None:
        return None
    info_el = reader.child(element, "BussinessDocumentInfo")
    info = None
    if info_el is not None:
        info = BusinessDocumentInfo(
            document_info=reader.text(info_el, "DocumentInfo"),
            document_receiver=reader.text(info_el, "DocumentReceiver"),
            receivers=tuple(
                Receiver(
                    organ_id=reader.text(el, "OrganId") or "",
                    receiver_type=reader.convert(
                        el, "ReceiverType", lambda v: ReceiverType(int(v)), "0 or 1"
                    ),
                )
                for el in reader.children(reader.child(info_el, "ReceiverList"), "Receiver")
            ),
        )
    replacements = tuple(
        ReplacementInfo(
            document_id=reader.text(el, "DocumentId") or "",
            organ_ids=tuple(
                (o.text or "").strip()
                for o in reader.children(reader.child(el, "OrganIdList"), "OrganId")
                if (o.text or "").strip()
            ),
        )
        for el in reader.children(reader.child(element, "ReplacementInfoList"), "ReplacementInfo")
    )
    return Business(
        business_doc_type=reader.convert(
            element,
            "BussinessDocType",
            lambda v: BusinessDocType(int(v)),
            "0 (new), 1 (revoke), 2 (update) or 3 (replace): what the package does to the "
            "document cannot be told",
            required=True,
        )
        or BusinessDocType.NEW,
        document_id=reader.text(element, "DocumentId"),
        business_doc_reason=reader.text(element, "BussinessDocReason"),
        paper=reader.text(element, "Paper"),
        staff_info=_staff(reader, reader.child(element, "StaffInfo")),
        business_document_info=info,
        replacement_info=replacements,
    )


def _legacy_signature(reader: Reader, header: _Element | None) -> LegacySignature | None:
    placeholder = reader.child(header, "Signature")
    if placeholder is None:
        return None
    return LegacySignature(raw_xml=etree.tostring(placeholder, with_tail=False))
