"""Property: any model instance the builder emits validates and parses back equal."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.edxml import build_package, parse_package, validate_package
from connector.edxml.model import (
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    Organization,
    OtherInfo,
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
    compose_document_id,
)
from connector.timeutil import VN_TZ
from tests.edxml.factories import edoc

# XML-safe text without leading/trailing white space (the parser trims values).
_chars = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"
) | st.sampled_from("àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễđĐ&<>\"' ")


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_chars, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


organ_ids = st.from_regex(r"\A[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}\Z")
emails = st.from_regex(r"\A[a-z]{1,10}@[a-z]{1,10}\.gov\.vn\Z")
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 12, 31))
timestamps = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 12, 31)
).map(lambda value: value.replace(microsecond=0, tzinfo=VN_TZ))
code_part = st.from_regex(r"\A[0-9A-Za-zĐ\-]{1,11}\Z")

organizations = st.builds(
    Organization,
    organ_id=organ_ids,
    organization_in_charge=optional(text(500)),
    organ_name=optional(text(200)),
    organ_add=optional(text(500)),
    email=optional(emails),
    telephone=optional(st.from_regex(r"\A[0-9 ()+]{1,20}\Z").map(str.strip).filter(bool)),
    fax=st.none(),
    website=optional(st.from_regex(r"\A[a-z]{1,10}\.gov\.vn\Z")),
)
staff = st.builds(
    StaffInfo,
    department=optional(text(200)),
    staff=optional(text(200)),
    email=optional(emails),
    mobile=optional(st.from_regex(r"\A[0-9]{9,12}\Z")),
)


@st.composite
def edocs(draw: st.DrawFn) -> EdocPackage:
    sender = draw(organizations)
    code = Code(draw(code_part), draw(st.from_regex(r"\A[A-ZĐ][A-ZĐ\-]{0,29}\Z")))
    date = draw(dates)
    response = st.builds(
        ResponseFor,
        organ_id=organ_ids,
        code=optional(text(50)),
        document_id=st.just(compose_document_id("000.00.00.G22", date, code)),
        promulgation_date=optional(dates),
    )
    business = st.builds(
        Business,
        business_doc_type=st.sampled_from(BusinessDocType),
        document_id=st.none(),
        business_doc_reason=optional(text(500)),
        paper=st.none() | st.just("0"),
        staff_info=optional(staff),
        business_document_info=optional(
            st.builds(
                BusinessDocumentInfo,
                document_info=st.just("1"),
                document_receiver=st.just("1"),
                receivers=st.lists(
                    st.builds(Receiver, organ_ids, st.sampled_from(ReceiverType)), max_size=3
                ).map(tuple),
            )
        ),
        replacement_info=st.lists(
            st.builds(
                ReplacementInfo,
                st.just(compose_document_id(sender.organ_id, date, code)),
                st.lists(organ_ids, max_size=3).map(tuple),
            ),
            max_size=2,
        ).map(tuple),
    )
    attachments = st.lists(
        st.builds(
            Attachment,
            content_id=st.from_regex(r"\A[0-9a-z]{1,8}\Z"),
            name=text(100),
            content_type=st.sampled_from(["application/pdf", "application/msword"]),
            data=st.binary(max_size=300),
            description=optional(text(500)),
        ),
        max_size=3,
        unique_by=lambda a: a.content_id,
    ).map(tuple)
    return EdocPackage(
        from_=sender,
        to=tuple(draw(st.lists(organizations, min_size=1, max_size=3))),
        document_id=compose_document_id(sender.organ_id, date, code),
        code=code,
        promulgation_info=PromulgationInfo(draw(optional(text(50))), date),  # type: ignore[arg-type]
        document_type=DocumentType(
            draw(st.sampled_from([1, 2])),
            draw(text(100)),
            draw(optional(st.just("0"))),  # type: ignore[arg-type]
        ),
        subject=draw(text(500)),
        content=draw(optional(text(500))),  # type: ignore[arg-type]
        signer_info=draw(
            optional(
                st.builds(SignerInfo, optional(text(100)), optional(text(200)), optional(text(100)))
            )
        ),  # type: ignore[arg-type]
        due_date=draw(optional(dates)),  # type: ignore[arg-type]
        other_info=draw(
            st.builds(
                OtherInfo,
                priority=st.sampled_from(Priority),
                sphere_of_promulgation=optional(text(100)),
                typer_notation=optional(text(10)),
                promulgation_amount=optional(st.integers(0, 1000)),
                page_amount=optional(st.integers(0, 1000)),
                direction=st.booleans(),
                appendixes=st.lists(text(500), max_size=2).map(tuple),
            )
        ),
        response_for=tuple(draw(st.lists(response, max_size=2))),
        steering_type=draw(optional(st.sampled_from(SteeringType))),  # type: ignore[arg-type]
        to_places=tuple(draw(st.lists(text(150), max_size=2))),
        trace_headers=tuple(
            draw(st.lists(st.builds(TraceHeader, organ_ids, timestamps), max_size=2))
        ),
        business=draw(optional(business)),  # type: ignore[arg-type]
        attachments=draw(attachments),
    )


statuses = st.builds(
    StatusPackage,
    from_=organizations,
    response_for=st.builds(
        ResponseFor,
        organ_id=organ_ids,
        code=optional(text(50)),
        document_id=st.just("000.00.31.H12,2026/11/20,123/SNV-VP"),
        promulgation_date=optional(dates),
    ),
    status_code=st.sampled_from(StatusCode),
    timestamp=timestamps,
    staff_info=optional(staff),
    description=optional(text(1000)),
)

_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(edocs(), st.booleans())
def test_any_edoc_round_trips_and_validates(package: EdocPackage, zip_it: bool) -> None:
    emitted = build_package(package, zip_attachments=zip_it)
    assert validate_package(emitted) == []
    assert parse_package(emitted) == package


@_settings
@given(statuses)
def test_any_status_round_trips_and_validates(package: StatusPackage) -> None:
    emitted = build_package(package)
    assert validate_package(emitted) == []
    assert parse_package(emitted) == package


def test_wire_shape_is_the_national_axis_shape() -> None:
    text_out = build_package(edoc()).decode()
    assert text_out.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">'
    )
    assert '<edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">' in text_out
    assert "<AttachmentEncoded>" in text_out and "<Attachment>" in text_out
    assert "<edXML:Bussiness>" in text_out
    assert "<edXML:PromulgationDate>2026/11/20</edXML:PromulgationDate>" in text_out
    assert "<edXML:Timestamp>2026/11/20 08:30:00</edXML:Timestamp>" in text_out
    order = [
        text_out.index(f"<edXML:{name}>")
        for name in (
            "From",
            "To",
            "DocumentId",
            "Code",
            "PromulgationInfo",
            "DocumentType",
            "Subject",
            "Content",
            "SignerInfo",
            "DueDate",
            "OtherInfo",
            "SteeringType",
            "ToPlaces",
        )
    ]
    assert order == sorted(order)


def test_timestamps_are_written_in_vietnam_time() -> None:
    utc_time = dt.datetime(2026, 11, 20, 1, 30, tzinfo=dt.UTC)
    package = edoc(trace_headers=(TraceHeader("000.00.31.H12", utc_time),))
    assert b"<edXML:Timestamp>2026/11/20 08:30:00</edXML:Timestamp>" in build_package(package)
