"""Attachment payloads: base64, and the national axis' zip wrapping with bomb limits."""

from __future__ import annotations

import io
import zipfile

import pytest

from connector.edxml import attachments as att

LIMITS = att.AttachmentLimits(max_bytes=1 << 20, max_ratio=50)


def test_zip_round_trip_is_deterministic() -> None:
    data = b"%PDF-1.7 " + b"x" * 5000
    zipped = att.zip_single("van-ban.pdf", data)
    assert zipped == att.zip_single("van-ban.pdf", data)  # same bytes: a resend is identical
    assert att.is_zip(zipped)
    assert att.unzip_single(zipped, name="van-ban.pdf", limits=LIMITS) == ("van-ban.pdf", data)


def test_a_zip_with_several_files_is_kept_as_a_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.pdf", b"a")
        archive.writestr("b.pdf", b"b")
    assert att.unzip_single(buffer.getvalue(), name="two.zip", limits=LIMITS) is None


def test_expansion_ratio_is_bounded() -> None:
    bomb = att.zip_single("zeros.bin", b"\0" * (LIMITS.max_bytes - 1))  # compresses ~1000:1
    with pytest.raises(att.AttachmentError) as caught:
        att.unzip_single(bomb, name="zeros.bin", limits=LIMITS)
    assert caught.value.reason == "attachment_zip_bomb"


def test_base64_with_line_breaks_and_limits() -> None:
    assert att.decode_base64("aGVs\nbG8=\n", name="x", limits=LIMITS) == b"hello"
    with pytest.raises(att.AttachmentError) as caught:
        att.decode_base64("A" * (2 << 20), name="big.pdf", limits=LIMITS)
    assert caught.value.reason == "attachment_too_large" and "big.pdf" in str(caught.value)
    with pytest.raises(att.AttachmentError) as caught:
        att.decode_base64("@@@@", name="bad.pdf", limits=LIMITS)
    assert caught.value.reason == "attachment_bad_base64"


def test_content_type_from_the_name() -> None:
    assert att.guess_content_type("cong-van.pdf") == "application/pdf"
    assert att.guess_content_type("no-extension") == "application/octet-stream"


@pytest.mark.parametrize("tail", [b"", b"\x00" * 40, b"not a zip at all", bytes(range(256))])
@pytest.mark.parametrize("declared", ["application/pdf", "application/octet-stream", "application/zip"])
def test_bytes_that_only_begin_like_a_zip(tail: bytes, declared: str) -> None:
    """No zip directory: kept as sent unless a zip was declared (then a precise refusal)."""
    import dataclasses

    from connector.edxml import build_package, parse_package
    from connector.edxml.model import Attachment
    from connector.edxml.problems import EdxmlError

    from .factories import edoc

    data = att.ZIP_MAGIC + tail
    package = dataclasses.replace(
        edoc(), attachments=(Attachment("1", "x.pdf", declared, data=data),)
    )
    emitted = build_package(package, zip_attachments=False)
    if declared == "application/zip":
        with pytest.raises(EdxmlError, match="looks like a zip but cannot be read"):
            parse_package(emitted)
    else:
        assert parse_package(emitted).attachments[0].data == data
