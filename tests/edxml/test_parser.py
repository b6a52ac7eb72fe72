"""The tolerant parser on real national-axis samples and on the spec's tolerance list."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from connector.edxml import build_package, parse_package, validate_package
from connector.edxml.model import (
    BusinessDocType,
    EdocPackage,
    Organization,
    StatusCode,
    StatusPackage,
)
from connector.edxml.problems import EdxmlError
from tests.edxml.factories import edoc, status
from tests.samples import sample_params


@pytest.mark.parametrize("path", sample_params())
def test_every_sample_parses_reemits_valid_and_round_trips(path: Path) -> None:
    package = parse_package(path.read_bytes())
    emitted = build_package(package)
    assert validate_package(emitted) == []
    assert parse_package(emitted) == package
    zipped = build_package(package, zip_attachments=True)
    assert validate_package(zipped) == []
    assert parse_package(zipped) == package


@pytest.mark.parametrize("path", sample_params("edoc_*.edxml"))
def test_edoc_samples_decode_their_zipped_attachment(path: Path) -> None:
    package = parse_package(path.read_bytes())
    assert isinstance(package, EdocPackage)
    assert package.legacy_signature is not None
    (attachment,) = package.attachments
    assert attachment.content_id == "209"
    assert not attachment.data.startswith(b"PK\x03\x04")  # the axis' zip was unwrapped
    assert attachment.content_type == "application/msword"


@pytest.mark.parametrize(
    ("name", "business"),
    [
        ("edoc_new", BusinessDocType.NEW),
        ("edoc_revocation", BusinessDocType.REVOKE),
        ("edoc_update", BusinessDocType.UPDATE),
        ("edoc_replacement", BusinessDocType.REPLACE),
    ],
)
def test_business_types_of_samples(name: str, business: BusinessDocType) -> None:
    params = sample_params(f"{name}.edxml")
    path = params[0].values[0]  # type: ignore[attr-defined]
    if path is None:
        pytest.skip("samples absent")
    package = parse_package(path.read_bytes())
    assert isinstance(package, EdocPackage)
    assert package.business_doc_type is business
    if business is BusinessDocType.UPDATE:
        assert package.business and package.business.business_document_info
        assert len(package.business.business_document_info.receivers) == 2
    if business is BusinessDocType.REPLACE:
        assert package.business and len(package.business.replacement_info) == 2


@pytest.mark.parametrize("path", sample_params("status*.edxml"))
def test_status_samples(path: Path) -> None:
    package = parse_package(path.read_bytes())
    assert isinstance(package, StatusPackage)
    assert package.response_for.document_id
    assert package.status_code in StatusCode


def _edoc_bytes() -> bytes:
    return build_package(edoc())


def test_tolerates_stray_bytes_and_alternative_spellings() -> None:
    sender = Organization("000.00.31.H12", organization_in_charge="UBND tỉnh Cà Mau")
    data = b"1212" + build_package(edoc(from_=sender))
    data = data.replace(b"OrganizationInCharge", b"OrganInCharge")
    data = data.replace(b"Bussiness", b"Business")
    package = parse_package(data)
    assert isinstance(package, EdocPackage)
    assert package.from_.organization_in_charge == "UBND tỉnh Cà Mau"
    assert package.business is not None and package.business.business_doc_reason


@pytest.mark.parametrize("text", ["2026/11/20", "2026/11/20 00:00:00", "20/11/2026 00:00:00"])
def test_three_date_formats(text: str) -> None:
    data = _edoc_bytes().replace(
        b"<edXML:PromulgationDate>2026/11/20<", f"<edXML:PromulgationDate>{text}<".encode()
    )
    package = parse_package(data)
    assert isinstance(package, EdocPackage)
    assert package.promulgation_info.promulgation_date == dt.date(2026, 11, 20)


def test_empty_response_for_uuid_document_id_and_cid_without_prefix() -> None:
    data = _edoc_bytes()
    data = data.replace(b"<edXML:SteeringType>", b"<edXML:ResponseFor/><edXML:SteeringType>")
    uuid = b"6f1c2a3b-1111-4a2b-9c3d-0123456789ab"
    data = data.replace(
        b"000.00.31.H12,2026/11/20,123/SNV-VP</edXML:DocumentId>", uuid + b"</edXML:DocumentId>", 1
    )
    data = data.replace(b"<ContentId>cid:1</ContentId>", b"<ContentId>1</ContentId>")
    package = parse_package(data)
    assert isinstance(package, EdocPackage)
    assert package.response_for == ()
    assert package.document_id == uuid.decode()
    assert package.attachments[0].content_id == "1"


def test_child_order_does_not_matter() -> None:
    data = build_package(status())
    swapped = data.replace(b"<edXML:StatusCode>01</edXML:StatusCode>", b"").replace(
        b"<edXML:From>", b"<edXML:StatusCode>01</edXML:StatusCode><edXML:From>"
    )
    assert parse_package(swapped) == status()


def test_all_problems_reported_at_once_with_lines_and_paths() -> None:
    text = _edoc_bytes().decode()
    # Two things receiving needs: the sender's OrganId and the date (none in a UUID DocumentId).
    text = re.sub(r"<edXML:DocumentId>[^<]*</edXML:DocumentId>",
                  "<edXML:DocumentId>6f1c2a34-1b2c-4d5e-8f90-0123456789ab</edXML:DocumentId>",
                  text, count=1)
    text = text.replace(
        ">2026/11/20</edXML:PromulgationDate>", ">20-11-2026</edXML:PromulgationDate>"
    )
    text = re.sub(r"(<edXML:From>\s*)<edXML:OrganId>[^<]*</edXML:OrganId>", r"\1", text)
    data = text.encode()
    with pytest.raises(EdxmlError) as caught:
        parse_package(data)
    problems = caught.value.problems
    messages = " | ".join(str(p) for p in problems)
    assert "OrganId" in messages and "PromulgationDate" in messages
    assert all(p.line for p in problems)
    assert any(p.path.endswith("PromulgationInfo/PromulgationDate") for p in problems)
    assert caught.value.kind == "permanent"
