"""Small valid packages for tests."""

from __future__ import annotations

import datetime as dt

from connector.edxml.model import (
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    EdocPackage,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
    compose_document_id,
)
from connector.timeutil import VN_TZ

A = Organization(
    "000.00.31.H12", organ_name="Sở Nội vụ tỉnh Cà Mau (demo)", email="snv@camau.gov.vn"
)
B = Organization("000.00.32.H12", organ_name="Sở Tài chính tỉnh Cà Mau (demo)")


def edoc(**overrides: object) -> EdocPackage:
    code = Code("123", "SNV-VP")
    date = dt.date(2026, 11, 20)
    values: dict[str, object] = dict(
        from_=A,
        to=(B,),
        document_id=compose_document_id(A.organ_id, date, code),
        code=code,
        promulgation_info=PromulgationInfo("Cà Mau", date),
        document_type=DocumentType(1, "Công văn", "0"),
        subject="V/v triển khai liên thông văn bản điện tử",
        content="Nội dung",
        signer_info=SignerInfo("KT. GIÁM ĐỐC", "Phó Giám đốc", "Nguyễn Văn A"),
        due_date=dt.date(2026, 12, 1),
        other_info=OtherInfo(priority=Priority.URGENT, page_amount=2, promulgation_amount=1),
        steering_type=SteeringType.NOT_STEERING,
        to_places=("Các sở, ban, ngành",),
        trace_headers=(TraceHeader(A.organ_id, dt.datetime(2026, 11, 20, 8, 30, tzinfo=VN_TZ)),),
        business=Business(
            BusinessDocType.NEW,
            business_doc_reason="Văn bản điện tử mới",
            staff_info=StaffInfo("Văn thư", "Trần Thị B"),
        ),
        attachments=(
            Attachment(
                "1",
                "cong-van.signed.pdf",
                "application/pdf",
                b"%PDF-1.7 test\n%%EOF\n",
                description="Công văn",
            ),
        ),
    )
    values.update(overrides)
    return EdocPackage(**values)  # type: ignore[arg-type]


def status(code: StatusCode = StatusCode.ARRIVED) -> StatusPackage:
    doc = edoc()
    return StatusPackage(
        from_=B,
        response_for=ResponseFor(
            A.organ_id, str(doc.code), doc.document_id, doc.promulgation_info.promulgation_date
        ),
        status_code=code,
        timestamp=dt.datetime(2026, 11, 20, 9, 0, tzinfo=VN_TZ),
        staff_info=StaffInfo("Văn thư", "Lê Văn C"),
        description="Đã đến",
    )
