"""A cheap look at a package's routing facts, without decoding attachments.

Routers (the hub emulator, the inbound loop) need who sent it, to whom, which document
and what kind; decoding megabytes of base64 for that would be waste. This module must not
build models of attachments or validate.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from connector.edxml.model import NS
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.reader import Reader
from connector.edxml.xmlsafe import DEFAULT_LIMITS, XmlLimits, parse_untrusted


@dataclass(frozen=True)
class PackageSummary:
    kind: str  # "edoc" or "status"
    from_organ_id: str
    to_organ_ids: tuple[str, ...]
    document_id: str
    priority: int = 0  # effective priority: 4 counts as 3
    status_code: str | None = None
    response_for_organ_id: str | None = None
    business_doc_type: int = 0
    subject: str | None = None


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _text(element: etree._Element | None, path: str) -> str:
    if element is None:
        return ""
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def peek(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> PackageSummary:
    """Routing facts of edXML bytes; raises ``EdxmlError`` when they cannot be found."""
    root = parse_untrusted(data, limits)
    return peek_element(root)


def peek_element(root: etree._Element) -> PackageSummary:
    if root.tag != _q("edXML"):
        raise EdxmlError(
            [
                Problem(
                    f"root element is {root.tag}, expected edXML in {NS}",
                    path="/",
                    line=root.sourceline,
                    reason="wrong_namespace",
                )
            ]
        )
    header = root.find(f"{_q('edXMLEnvelope')}/{_q('edXMLHeader')}")
    message = header.find(_q("MessageHeader")) if header is not None else None
    if message is None:
        raise EdxmlError(
            [
                Problem(
                    "MessageHeader is missing", path="/edXML/edXMLEnvelope", reason="missing_field"
                )
            ]
        )
    # Read exactly as the parser reads (first element of a name, either spelling): a router
    # taking another duplicate than the receiver would route where the receiver never looked.
    read = Reader()
    from_id = read.text(read.child(message, "From"), "OrganId") or ""
    status_code = _text(message, _q("StatusCode")) or None
    problems: list[Problem] = []
    if not from_id:
        problems.append(
            Problem(
                "From/OrganId is missing",
                path="/edXML/.../MessageHeader/From",
                element="OrganId",
                reason="missing_field",
            )
        )
    if status_code is not None:
        response = read.child(message, "ResponseFor")
        document_id = read.text(response, "DocumentId") or ""
        response_organ = read.text(response, "OrganId")
        if not document_id:
            problems.append(
                Problem(
                    "ResponseFor/DocumentId is missing",
                    element="DocumentId",
                    path="/edXML/.../MessageHeader/ResponseFor",
                    reason="missing_field",
                )
            )
        if problems:
            raise EdxmlError(problems)
        return PackageSummary(
            "status",
            from_id,
            (response_organ,) if response_organ else (),
            document_id,
            status_code=status_code,
            response_for_organ_id=response_organ,
        )
    to_ids = tuple(
        organ_id
        for organ_id in (read.text(to, "OrganId") for to in read.children(message, "To"))
        if organ_id
    )
    document_id = _text(message, _q("DocumentId"))
    if not to_ids:
        problems.append(
            Problem(
                "no To/OrganId (recipient)",
                element="To",
                path="/edXML/.../MessageHeader",
                reason="missing_field",
            )
        )
    if not document_id:
        problems.append(
            Problem(
                "DocumentId is missing",
                element="DocumentId",
                path="/edXML/.../MessageHeader",
                reason="missing_field",
            )
        )
    if problems:
        raise EdxmlError(problems)
    try:
        priority = int(_text(message, f"{_q('OtherInfo')}/{_q('Priority')}") or 0)
    except ValueError:
        priority = 0
    business = 0
    trace_list = read.child(header, "TraceHeaderList")
    value = read.text(read.child(trace_list, "Bussiness"), "BussinessDocType") or ""
    if value.isascii() and value.isdigit():
        business = int(value)
    return PackageSummary(
        "edoc",
        from_id,
        to_ids,
        document_id,
        priority=min(max(priority, 0), 3),
        business_doc_type=business,
        subject=_text(message, _q("Subject")) or None,
    )
