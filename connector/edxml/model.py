"""The edXML data model (QCVN 102:2016 as spoken on the wire): immutable, typed values.

These classes hold what a package *means* (plus, on receipt, its departures from the
standard, kept apart from the meaning); the wire shape belongs to ``builder`` (emit)
and ``parser`` (read). Field names follow the spec's element names in snake_case; the
spec's ``Bussiness`` spelling is kept only on the wire. This module must not do I/O or
touch XML.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from connector.edxml.problems import Problem

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


class Priority(enum.IntEnum):
    """OtherInfo/Priority (độ khẩn). 4 is accepted on input and treated as 3."""

    NORMAL = 0  # Thường
    URGENT = 1  # Khẩn
    VERY_URGENT = 2  # Thượng khẩn
    FLASH = 3  # Hỏa tốc
    FLASH_SCHEDULED = 4  # Hỏa tốc hẹn giờ

    @property
    def effective(self) -> int:
        """Sending priority: 4 is handled exactly like 3."""
        return 3 if self is Priority.FLASH_SCHEDULED else int(self)


class SteeringType(enum.IntEnum):
    NOT_STEERING = 1
    STEERING = 2
    STEERING_REPORT = 3


class BusinessDocType(enum.IntEnum):
    NEW = 0  # Văn bản mới
    REVOKE = 1  # Thu hồi
    UPDATE = 2  # Cập nhật
    REPLACE = 3  # Thay thế


class ReceiverType(enum.IntEnum):
    REMOVED = 0
    ADDED = 1


class StatusCode(enum.Enum):
    """The only status codes that exist on the wire, with their legal meaning."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    FINISHED = "06"
    RECALL_REQUEST = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @property
    def meaning(self) -> str:
        return _STATUS_MEANINGS[self]

    @property
    def sent_by_receiver(self) -> bool:
        return self is not StatusCode.RECALL_REQUEST


_STATUS_MEANINGS = {
    StatusCode.ARRIVED: "Đã đến (arrived, not yet handled)",
    StatusCode.REJECTED: "Từ chối tiếp nhận (rejected)",
    StatusCode.ACCEPTED: "Đã tiếp nhận (accepted and registered)",
    StatusCode.ASSIGNED: "Phân công (assigned for handling)",
    StatusCode.PROCESSING: "Đang xử lý (being handled)",
    StatusCode.FINISHED: "Hoàn thành (handling completed)",
    StatusCode.RECALL_REQUEST: "Lấy lại (sender asks to take the document back)",
    StatusCode.RECALL_AGREED: "Đồng ý cập nhật/lấy lại (recall/update agreed)",
    StatusCode.RECALL_REFUSED: "Từ chối cập nhật/lấy lại (recall/update refused)",
}


@dataclass(frozen=True)
class Organization:
    """From / To: an organisation identified by its QĐ 20/2020 OrganId."""

    organ_id: str
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class Code:
    code_number: str  # số
    code_notation: str  # ký hiệu

    def __str__(self) -> str:
        return f"{self.code_number}/{self.code_notation}"


@dataclass(frozen=True)
class PromulgationInfo:
    place: str | None
    promulgation_date: dt.date


@dataclass(frozen=True)
class DocumentType:
    type: int | None  # 1 or 2 (None: a received package did not say)
    type_name: str  # the document kind: Công văn, Quyết định, ...
    type_detail: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    competence: str | None = None  # TL., KT., TM., Q., ...
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True)
class OtherInfo:
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool = False
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """The document a package answers (edoc: a reply; status: the document reported on)."""

    organ_id: str | None = None
    code: str | None = None  # "số/ký hiệu"
    document_id: str | None = None
    promulgation_date: dt.date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.organ_id or self.code or self.document_id or self.promulgation_date)


@dataclass(frozen=True)
class TraceHeader:
    organ_id: str  # "" when a hub added a TraceHeader without one
    timestamp: dt.datetime | None  # aware, Vietnam time on the wire; None when unreadable


@dataclass(frozen=True)
class StaffInfo:
    department: str | None = None
    staff: str | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class Receiver:
    organ_id: str
    receiver_type: ReceiverType | None  # None: a received value outside QCVN's list


@dataclass(frozen=True)
class BusinessDocumentInfo:
    """Bussiness/BussinessDocumentInfo: what an update (type 2) changes."""

    document_info: str | None = None
    document_receiver: str | None = None
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True)
class ReplacementInfo:
    """Bussiness/ReplacementInfoList/ReplacementInfo: a document replaced (type 3)."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Business:
    """TraceHeaderList/Bussiness: new, revoke, update or replace."""

    business_doc_type: BusinessDocType = BusinessDocType.NEW
    document_id: str | None = None
    business_doc_reason: str | None = None
    paper: str | None = None
    staff_info: StaffInfo | None = None
    business_document_info: BusinessDocumentInfo | None = None
    replacement_info: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True)
class Attachment:
    """One attachment: manifest metadata plus the decoded payload bytes.

    ``content_type`` is the real type of ``data`` (after unzipping a national-axis zip).
    ``description`` is the manifest's Description.
    """

    content_id: str  # without the "cid:" prefix
    name: str
    content_type: str
    data: bytes = field(repr=False)
    description: str | None = None


@dataclass(frozen=True)
class LegacySignature:
    """A ``Signature`` element in the QCVN namespace: a placeholder nobody verifies.

    Kept verbatim (raw XML bytes) so it can be recorded and, by policy, passed on untouched.
    """

    raw_xml: bytes = field(repr=False)


@dataclass(frozen=True)
class EdocPackage:
    """A document package ("edoc")."""

    from_: Organization
    to: tuple[Organization, ...]
    document_id: str
    code: Code
    promulgation_info: PromulgationInfo
    document_type: DocumentType
    subject: str
    content: str | None = None
    signer_info: SignerInfo | None = None
    due_date: dt.date | None = None
    other_info: OtherInfo = field(default_factory=OtherInfo)
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: SteeringType | None = None
    to_places: tuple[str, ...] = ()
    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    attachments: tuple[Attachment, ...] = ()
    legacy_signature: LegacySignature | None = None
    # Departures from QCVN 102 found on receipt (receive level): kept with the package,
    # never part of what it means.
    deviations: tuple[Problem, ...] = field(default=(), compare=False, repr=False)

    kind = "edoc"

    @property
    def priority(self) -> int:
        return self.other_info.priority.effective

    @property
    def business_doc_type(self) -> BusinessDocType:
        return self.business.business_doc_type if self.business else BusinessDocType.NEW


@dataclass(frozen=True)
class StatusPackage:
    """A status package: one agency reports a document's processing state."""

    from_: Organization
    response_for: ResponseFor
    status_code: StatusCode
    timestamp: dt.datetime | None  # None: a received status without a readable one
    staff_info: StaffInfo | None = None
    description: str | None = None
    deviations: tuple[Problem, ...] = field(default=(), compare=False, repr=False)

    kind = "status"

    @property
    def document_id(self) -> str:
        return self.response_for.document_id or ""


Package = EdocPackage | StatusPackage


def compose_document_id(issuer_organ_id: str, promulgation_date: dt.date, code: Code) -> str:
    """The composite DocumentId: ``<issuer OrganId>,<yyyy/MM/dd>,<số>/<ký hiệu>``."""
    return f"{issuer_organ_id},{promulgation_date.strftime('%Y/%m/%d')},{code}"


# Every element name QCVN 102 (our schemas) declares: the bounded label set of the
# received-deviations metric (anything else counts as "other"). A test keeps it equal to
# what schemas/*.xsd declare.
QCVN_ELEMENTS: frozenset[str] = frozenset({
    "Appendix", "Appendixes", "Attachment", "AttachmentEncoded", "AttachmentName", "Bussiness",
    "BussinessDocReason", "BussinessDocType", "BussinessDocumentInfo", "Code", "CodeNotation",
    "CodeNumber", "Competence", "Content", "ContentId", "ContentTransferEncoded", "ContentType",
    "Department", "Description", "Direction", "DocumentId", "DocumentInfo", "DocumentReceiver",
    "DocumentType", "DueDate", "Email", "Fax", "From", "FullName", "MessageHeader", "Mobile",
    "OrganAdd", "OrganId", "OrganIdList", "OrganName", "OrganizationInCharge", "OtherInfo",
    "PageAmount", "Paper", "Place", "Position", "Priority", "PromulgationAmount",
    "PromulgationDate", "PromulgationInfo", "Receiver", "ReceiverList", "ReceiverType",
    "Reference", "ReplacementInfo", "ReplacementInfoList", "ResponseFor", "Signature",
    "SignerInfo", "SphereOfPromulgation", "Staff", "StaffInfo", "StatusCode", "SteeringType",
    "Subject", "Telephone", "Timestamp", "To", "ToPlaces", "TraceHeader", "TraceHeaderList",
    "Type", "TypeDetail", "TypeName", "TyperNotation", "Website", "edXML", "edXMLBody",
    "edXMLEnvelope", "edXMLHeader", "edXMLManifest",
})
