"""Strict edXML writer: the typed model -> the exact wire shape the national axis emits.

Shape: ``<edXML xmlns="NS"><edXML:edXMLEnvelope xmlns:edXML="NS">…</edXML:edXMLEnvelope>
<AttachmentEncoded>…</AttachmentEncoded></edXML>``, children in the axis library's order,
dates ``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss`` in Vietnam time, the ``Bussiness``
spelling. Absent optional values are omitted. No signature is written here: signing works
on these bytes afterwards. This module must not parse or validate.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from xml.sax.saxutils import escape

from connector import timeutil
from connector.edxml import attachments as att
from connector.edxml.model import (
    NS,
    Attachment,
    Business,
    EdocPackage,
    Organization,
    OtherInfo,
    Package,
    ResponseFor,
    StaffInfo,
    StatusPackage,
)

_Value = str | int | bool | dt.date | dt.datetime | None
# Base64 is written in slices of this many input bytes (a multiple of 3, so the slices'
# encodings concatenate to the encoding of the whole): a 20 MB attachment never exists as
# one base64 string, str and f-string beside the package (issue 13.6).
_BASE64_SLICE = 3 * 256 * 1024


class _Base64Line:
    """A line whose middle is a file's bytes in base64, encoded only when written out."""

    def __init__(self, before: str, data: bytes, after: str) -> None:
        self.before, self.data, self.after = before, data, after

    def write(self, out: io.BytesIO) -> None:
        out.write(self.before.encode("utf-8"))
        view = memoryview(self.data)
        for start in range(0, len(view), _BASE64_SLICE):
            out.write(base64.b64encode(view[start:start + _BASE64_SLICE]))
        out.write(self.after.encode("utf-8"))


def _fmt(value: _Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return timeutil.format_timestamp(value)
    if isinstance(value, dt.date):
        return timeutil.format_date(value)
    return str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str | _Base64Line] = []
        self.depth = 0

    def leaf(self, name: str, value: _Value, *, prefix: str = "edXML:") -> None:
        if value is None:
            return
        self.lines.append(
            f"{'  ' * self.depth}<{prefix}{name}>{escape(_fmt(value))}</{prefix}{name}>"
        )

    def open(self, name: str, attrs: str = "", *, prefix: str = "edXML:") -> None:
        self.lines.append(f"{'  ' * self.depth}<{prefix}{name}{attrs}>")
        self.depth += 1

    def close(self, name: str, *, prefix: str = "edXML:") -> None:
        self.depth -= 1
        self.lines.append(f"{'  ' * self.depth}</{prefix}{name}>")

    def raw(self, text: str) -> None:
        self.lines.append(f"{'  ' * self.depth}{text}")

    def raw_base64(self, before: str, data: bytes, after: str) -> None:
        self.lines.append(_Base64Line(f"{'  ' * self.depth}{before}", data, after))

    def bytes(self) -> bytes:
        # BytesIO grows in place and hands its buffer over in getvalue(): the package exists
        # once, not as str, joined str and encoded bytes.
        out = io.BytesIO()
        out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        text: list[str] = []
        for line in self.lines:
            if isinstance(line, str):
                text.append(line)
                continue
            out.write("".join(f"{t}\n" for t in text).encode("utf-8"))
            text.clear()
            line.write(out)
            out.write(b"\n")
        out.write("".join(f"{t}\n" for t in text).encode("utf-8"))
        return out.getvalue()


def build_package(package: Package, *, zip_attachments: bool = False) -> bytes:
    """Emit the package as wire bytes (UTF-8). ``zip_attachments`` wraps each file in a zip."""
    writer = _Writer()
    writer.open("edXML", f' xmlns="{NS}"', prefix="")
    writer.open("edXMLEnvelope", f' xmlns:edXML="{NS}"')
    writer.open("edXMLHeader")
    writer.open("MessageHeader")
    if isinstance(package, StatusPackage):
        _status_header(writer, package)
        writer.close("MessageHeader")
        writer.close("edXMLHeader")
        writer.close("edXMLEnvelope")
    else:
        _edoc_header(writer, package)
        writer.close("MessageHeader")
        _trace_list(writer, package)
        if package.legacy_signature is not None:
            # Passed on untouched: peers expect it and nobody verifies it.
            writer.raw(package.legacy_signature.raw_xml.decode("utf-8"))
        writer.close("edXMLHeader")
        writer.open("edXMLBody")
        writer.open("edXMLManifest", ' version="1.0"')
        for attachment in package.attachments:
            _manifest_reference(writer, attachment)
        writer.close("edXMLManifest")
        writer.close("edXMLBody")
        writer.close("edXMLEnvelope")
        if package.attachments:
            writer.open("AttachmentEncoded", prefix="")
            for attachment in package.attachments:
                _encoded_attachment(writer, attachment, zip_attachments)
            writer.close("AttachmentEncoded", prefix="")
    writer.close("edXML", prefix="")
    return writer.bytes()


def _organization(writer: _Writer, tag: str, org: Organization) -> None:
    writer.open(tag)
    writer.leaf("OrganId", org.organ_id)
    writer.leaf("OrganizationInCharge", org.organization_in_charge)
    writer.leaf("OrganName", org.organ_name)
    writer.leaf("OrganAdd", org.organ_add)
    writer.leaf("Email", org.email)
    writer.leaf("Telephone", org.telephone)
    writer.leaf("Fax", org.fax)
    writer.leaf("Website", org.website)
    writer.close(tag)


def _response_for(writer: _Writer, response: ResponseFor) -> None:
    writer.open("ResponseFor")
    writer.leaf("OrganId", response.organ_id)
    writer.leaf("Code", response.code)
    writer.leaf("DocumentId", response.document_id)
    writer.leaf("PromulgationDate", response.promulgation_date)
    writer.close("ResponseFor")


def _staff(writer: _Writer, staff: StaffInfo | None) -> None:
    if staff is None:
        return
    writer.open("StaffInfo")
    writer.leaf("Department", staff.department)
    writer.leaf("Staff", staff.staff)
    writer.leaf("Email", staff.email)
    writer.leaf("Mobile", staff.mobile)
    writer.close("StaffInfo")


def _status_header(writer: _Writer, package: StatusPackage) -> None:
    _organization(writer, "From", package.from_)
    _response_for(writer, package.response_for)
    _staff(writer, package.staff_info)
    writer.leaf("StatusCode", package.status_code.value)
    writer.leaf("Description", package.description)
    writer.leaf("Timestamp", package.timestamp)


def _edoc_header(writer: _Writer, package: EdocPackage) -> None:
    _organization(writer, "From", package.from_)
    for recipient in package.to:
        _organization(writer, "To", recipient)
    writer.leaf("DocumentId", package.document_id)
    writer.open("Code")
    writer.leaf("CodeNumber", package.code.code_number)
    writer.leaf("CodeNotation", package.code.code_notation)
    writer.close("Code")
    writer.open("PromulgationInfo")
    writer.leaf("Place", package.promulgation_info.place)
    writer.leaf("PromulgationDate", package.promulgation_info.promulgation_date)
    writer.close("PromulgationInfo")
    writer.open("DocumentType")
    writer.leaf("Type", package.document_type.type)
    writer.leaf("TypeDetail", package.document_type.type_detail)
    writer.leaf("TypeName", package.document_type.type_name)
    writer.close("DocumentType")
    writer.leaf("Subject", package.subject)
    writer.leaf("Content", package.content)
    if package.signer_info is not None:
        writer.open("SignerInfo")
        writer.leaf("Competence", package.signer_info.competence)
        writer.leaf("Position", package.signer_info.position)
        writer.leaf("FullName", package.signer_info.full_name)
        writer.close("SignerInfo")
    writer.leaf("DueDate", package.due_date)
    _other_info(writer, package.other_info)
    for response in package.response_for:
        _response_for(writer, response)
    writer.leaf("SteeringType", int(package.steering_type) if package.steering_type else None)
    if package.to_places:
        writer.open("ToPlaces")
        for place in package.to_places:
            writer.leaf("Place", place)
        writer.close("ToPlaces")


def _other_info(writer: _Writer, other: OtherInfo) -> None:
    writer.open("OtherInfo")
    writer.leaf("Priority", int(other.priority))
    writer.leaf("SphereOfPromulgation", other.sphere_of_promulgation)
    writer.leaf("TyperNotation", other.typer_notation)
    writer.leaf("PromulgationAmount", other.promulgation_amount)
    writer.leaf("PageAmount", other.page_amount)
    writer.leaf("Direction", other.direction)
    if other.appendixes:
        writer.open("Appendixes")
        for appendix in other.appendixes:
            writer.leaf("Appendix", appendix)
        writer.close("Appendixes")
    writer.close("OtherInfo")


def _trace_list(writer: _Writer, package: EdocPackage) -> None:
    if not package.trace_headers and package.business is None:
        return
    writer.open("TraceHeaderList")
    for trace in package.trace_headers:
        writer.open("TraceHeader")
        writer.leaf("OrganId", trace.organ_id)
        writer.leaf("Timestamp", trace.timestamp)
        writer.close("TraceHeader")
    if package.business is not None:
        _business(writer, package.business)
    writer.close("TraceHeaderList")


def _business(writer: _Writer, business: Business) -> None:
    writer.open("Bussiness")
    writer.leaf("DocumentId", business.document_id)
    writer.leaf("BussinessDocType", int(business.business_doc_type))
    writer.leaf("BussinessDocReason", business.business_doc_reason)
    writer.leaf("Paper", business.paper)
    info = business.business_document_info
    if info is not None:
        writer.open("BussinessDocumentInfo")
        writer.leaf("DocumentInfo", info.document_info)
        writer.leaf("DocumentReceiver", info.document_receiver)
        if info.receivers:
            writer.open("ReceiverList")
            for receiver in info.receivers:
                writer.open("Receiver")
                writer.leaf("OrganId", receiver.organ_id)
                writer.leaf(
                    "ReceiverType",
                    None if receiver.receiver_type is None else int(receiver.receiver_type),
                )
                writer.close("Receiver")
            writer.close("ReceiverList")
        writer.close("BussinessDocumentInfo")
    if business.replacement_info:
        writer.open("ReplacementInfoList")
        for replacement in business.replacement_info:
            writer.open("ReplacementInfo")
            writer.leaf("DocumentId", replacement.document_id)
            writer.open("OrganIdList")
            for organ_id in replacement.organ_ids:
                writer.leaf("OrganId", organ_id)
            writer.close("OrganIdList")
            writer.close("ReplacementInfo")
        writer.close("ReplacementInfoList")
    _staff(writer, business.staff_info)  # last, as the national axis library emits it
    writer.close("Bussiness")


def _manifest_reference(writer: _Writer, attachment: Attachment) -> None:
    writer.open("Reference")
    writer.leaf("ContentId", f"cid:{attachment.content_id}")
    writer.leaf("ContentType", attachment.content_type)
    writer.leaf("Description", attachment.description)
    writer.leaf("AttachmentName", attachment.name)
    writer.close("Reference")


def _encoded_attachment(writer: _Writer, attachment: Attachment, zip_it: bool) -> None:
    # Ciphertext does not compress: an encrypted (S/MIME) attachment is never zipped.
    zip_it = zip_it and not attachment.content_type.lower().startswith("application/pkcs7-mime")
    data = att.zip_single(attachment.name, attachment.data) if zip_it else attachment.data
    wire_type = att.ZIP_CONTENT_TYPE if zip_it else attachment.content_type
    writer.open("Attachment", prefix="")
    writer.leaf("ContentId", f"cid:{attachment.content_id}", prefix="")
    writer.leaf("AttachmentName", attachment.name, prefix="")
    writer.leaf("Description", attachment.description, prefix="")
    writer.leaf("ContentType", wire_type, prefix="")
    writer.raw_base64(f'<edXML:ContentTransferEncoded xmlns:edXML="{NS}">', data,
                      "</edXML:ContentTransferEncoded>")
    writer.close("Attachment", prefix="")
