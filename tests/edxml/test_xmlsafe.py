"""The hardened entry for untrusted XML (the hostile corpus is in test_hostile.py)."""

from __future__ import annotations

import pytest

from connector.edxml.xmlsafe import UnsafeXmlError, XmlLimits, parse_untrusted, strip_stray_prefix

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def test_stray_prefix_and_bom_are_dropped() -> None:
    body = f'<?xml version="1.0"?><edXML xmlns="{NS}"/>'.encode()
    assert strip_stray_prefix(b"1212" + body) == (body, 4)
    assert strip_stray_prefix(b"\xef\xbb\xbf" + body) == (body, 3)
    assert parse_untrusted(b"1212" + body).tag == f"{{{NS}}}edXML"


def test_long_garbage_before_the_document_is_not_skipped() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_untrusted(b"x" * 200 + f'<edXML xmlns="{NS}"/>'.encode())


@pytest.mark.parametrize(
    ("limits", "data", "reason"),
    [
        (XmlLimits(max_bytes=10), f'<edXML xmlns="{NS}"/>'.encode(), "xml_too_large"),
        (XmlLimits(max_depth=3), b"<a><b><c><d/></c></b></a>", "xml_too_deep"),
        (XmlLimits(max_elements=3), b"<a><b/><b/><b/></a>", "xml_too_large"),
    ],
)
def test_limits(limits: XmlLimits, data: bytes, reason: str) -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        parse_untrusted(data, limits)
    assert caught.value.reason == reason


def test_only_bytes_are_accepted() -> None:
    with pytest.raises(TypeError):
        parse_untrusted("<a/>")  # type: ignore[arg-type]


def test_comments_and_processing_instructions_are_harmless() -> None:
    root = parse_untrusted(b"<?pi x?><!-- c --><a><!-- inner --><?pi y?></a>")
    assert root.tag == "a"
