"""The fixed vocabulary of edXML fields a mapping file can fill, with types and limits.

A mapping file names these targets under ``document.fields`` (record <-> EdocPackage) and
``status.fields`` (workflow command -> StatusPackage, StatusPackage -> local event). Group
targets (``main_document``, ``attachments``, ``response_for``, ...) have their own
sub-targets. Limits are those hubs enforce (spec "Field formats and limits"); they are
checked on every record whatever the mapping says. This module is data only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from connector.edxml.model import (
    BusinessDocType,
    Priority,
    ReceiverType,
    StatusCode,
    SteeringType,
)


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"  # a non-negative integer
    BOOL = "bool"
    DATE = "date"  # edXML yyyy/MM/dd
    DATETIME = "datetime"  # edXML yyyy/MM/dd HH:mm:ss, Vietnam time
    ORG = "org"  # a local code or OrganId, resolved in the directory to a full Organization
    ORG_ID = "org_id"  # a local code or OrganId, resolved to an OrganId
    ENUM = "enum"
    GROUP = "group"


@dataclass(frozen=True)
class Target:
    name: str
    kind: Kind
    help: str
    many: bool = False  # a list of values
    max_length: int | None = None
    enum: type[enum.Enum] | None = None
    enum_values: tuple[str, ...] = ()
    subtargets: dict[str, Target] = field(default_factory=dict)
    reverse_only: bool = False


def _t(name: str, kind: Kind, help_text: str, **kw: object) -> Target:
    return Target(name, kind, help_text, **kw)  # type: ignore[arg-type]


def _enum(name: str, enum_type: type[enum.Enum], help_text: str) -> Target:
    values = tuple(str(m.value) for m in enum_type)
    return Target(name, Kind.ENUM, help_text, enum=enum_type, enum_values=values)


def _staff() -> list[Target]:
    return [
        _t("staff_department", Kind.TEXT, "StaffInfo/Department", max_length=200),
        _t("staff_name", Kind.TEXT, "StaffInfo/Staff", max_length=200),
        _t("staff_email", Kind.TEXT, "StaffInfo/Email", max_length=100),
        _t("staff_mobile", Kind.TEXT, "StaffInfo/Mobile", max_length=20),
    ]


_FILE_FIELDS = {
    t.name: t
    for t in (
        _t("name", Kind.TEXT, "AttachmentName (file name)", max_length=500),
        _t("content_type", Kind.TEXT, "MIME type (default: guessed from the name)"),
        _t("description", Kind.TEXT, "manifest Description (default: the file name)"),
        _t("data", Kind.TEXT, "the file inline, base64"),
        _t("file", Kind.TEXT, "claim check: a file name in the attachments spool directory"),
    )
}

DOCUMENT_TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _t("from", Kind.ORG, "From: the issuing organisation (local code or OrganId)"),
        _t("from_name", Kind.TEXT, "reverse only: the sender's OrganName", reverse_only=True),
        _t("to", Kind.ORG, "To: the recipients (local codes or OrganIds)", many=True),
        _t("document_id", Kind.TEXT, "DocumentId (default: issuer,yyyy/MM/dd,số/ký hiệu)",
           max_length=100),
        _t("code", Kind.TEXT, "số/ký hiệu in one value, e.g. 15/SNV-VP", max_length=42),
        _t("code_number", Kind.TEXT, "Code/CodeNumber (số)", max_length=11),
        _t("code_notation", Kind.TEXT, "Code/CodeNotation (ký hiệu)", max_length=30),
        _t("place", Kind.TEXT, "PromulgationInfo/Place", max_length=50),
        _t("promulgation_date", Kind.DATE, "PromulgationInfo/PromulgationDate"),
        _t("type", Kind.INT, "DocumentType/Type: 1 administrative, 2 legal (default 1)"),
        _t("type_name", Kind.TEXT, "DocumentType/TypeName (Công văn, Quyết định, ...)",
           max_length=100),
        _t("type_detail", Kind.TEXT, "DocumentType/TypeDetail", max_length=100),
        _t("subject", Kind.TEXT, "Subject (trích yếu)", max_length=500),
        _t("content", Kind.TEXT, "Content", max_length=500),
        _t("signer_competence", Kind.TEXT, "SignerInfo/Competence (TL., KT., TM., ...)",
           max_length=100),
        _t("signer_position", Kind.TEXT, "SignerInfo/Position", max_length=200),
        _t("signer_full_name", Kind.TEXT, "SignerInfo/FullName", max_length=200),
        _t("due_date", Kind.DATE, "DueDate"),
        _enum("priority", Priority, "OtherInfo/Priority (0-4)"),
        _t("sphere_of_promulgation", Kind.TEXT, "OtherInfo/SphereOfPromulgation", max_length=100),
        _t("typer_notation", Kind.TEXT, "OtherInfo/TyperNotation", max_length=10),
        _t("promulgation_amount", Kind.INT, "OtherInfo/PromulgationAmount"),
        _t("page_amount", Kind.INT, "OtherInfo/PageAmount"),
        _t("direction", Kind.BOOL, "OtherInfo/Direction"),
        _t("appendixes", Kind.TEXT, "OtherInfo/Appendixes/Appendix", many=True, max_length=500),
        _enum("steering_type", SteeringType, "SteeringType (1-3)"),
        _t("to_places", Kind.TEXT, "ToPlaces/Place", many=True, max_length=150),
        _enum("business_doc_type", BusinessDocType, "Bussiness/BussinessDocType (0-3)"),
        _t("business_document_id", Kind.TEXT, "Bussiness/DocumentId (the document acted on)",
           max_length=100),
        _t("business_doc_reason", Kind.TEXT, "Bussiness/BussinessDocReason", max_length=500),
        _t("paper", Kind.TEXT, "Bussiness/Paper (0 no paper copy follows, 1 it does)",
           max_length=10),
        *_staff(),
        _t("document_info", Kind.TEXT, "BussinessDocumentInfo/DocumentInfo", max_length=500),
        _t("document_receiver", Kind.TEXT, "BussinessDocumentInfo/DocumentReceiver",
           max_length=500),
        _t("response_for", Kind.GROUP, "ResponseFor: documents this one answers", many=True,
           subtargets={s.name: s for s in (
               _t("organ_id", Kind.ORG_ID, "the answered document's issuer"),
               _t("code", Kind.TEXT, "its số/ký hiệu", max_length=42),
               _t("document_id", Kind.TEXT, "its DocumentId", max_length=100),
               _t("promulgation_date", Kind.DATE, "its PromulgationDate"),
           )}),
        _t("receivers", Kind.GROUP, "update: recipients added/removed", many=True,
           subtargets={s.name: s for s in (
               _t("organ_id", Kind.ORG_ID, "the recipient"),
               _enum("receiver_type", ReceiverType, "0 removed, 1 added"),
           )}),
        _t("replacements", Kind.GROUP, "replace: the documents replaced", many=True,
           subtargets={s.name: s for s in (
               _t("document_id", Kind.TEXT, "the replaced DocumentId", max_length=100),
               _t("organ_ids", Kind.ORG_ID, "recipients of the replaced document", many=True),
           )}),
        _t("main_document", Kind.GROUP, "the main document file (sent first)",
           subtargets=_FILE_FIELDS),
        _t("attachments", Kind.GROUP, "separate attachment files", many=True,
           subtargets=_FILE_FIELDS),
    )
}

DOCUMENT_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("from",), ("to",), ("promulgation_date",), ("type_name",), ("subject",), ("main_document",),
    ("code", "code_number"), ("code", "code_notation"),
)

STATUS_TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _enum("status_code", StatusCode, "StatusCode (02-06, 13, 15, 16 from the local side)"),
        _t("status_meaning", Kind.TEXT, "reverse only: the code's meaning", reverse_only=True),
        _t("from", Kind.ORG, "From: the reporting organisation (default: this agency)"),
        _t("from_name", Kind.TEXT, "reverse only: the reporter's OrganName", reverse_only=True),
        _t("document_id", Kind.TEXT, "ResponseFor/DocumentId", max_length=100),
        _t("document_sender", Kind.ORG_ID, "ResponseFor/OrganId: the document's sender"),
        _t("document_code", Kind.TEXT, "ResponseFor/Code (số/ký hiệu)", max_length=42),
        _t("document_promulgation_date", Kind.DATE, "ResponseFor/PromulgationDate"),
        *_staff(),
        _t("description", Kind.TEXT, "Description", max_length=500),
        _t("timestamp", Kind.DATETIME, "Timestamp (default: now)"),
    )
}

STATUS_REQUIRED: tuple[tuple[str, ...], ...] = (("status_code",), ("document_id",))
