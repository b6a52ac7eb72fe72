"""Hostile and broken inputs: each refused quickly with a clear error naming what is wrong."""

from __future__ import annotations

import base64
import io
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.edxml import build_package, parse_package
from connector.edxml.model import Attachment
from connector.errors import PermanentError
from tests.edxml.factories import edoc

HOSTILE = Path(__file__).parent / "hostile"
NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def _file(name: str) -> Callable[[], bytes]:
    return lambda: (HOSTILE / name).read_bytes()


def _quadratic() -> bytes:
    entity = "A" * 100_000
    refs = "&a;" * 100_000
    return (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "{entity}">]>'
        f'<edXML xmlns="{NS}">{refs}</edXML>'
    ).encode()


def _deep() -> bytes:
    return (f'<edXML xmlns="{NS}">' + "<a>" * 5000 + "</a>" * 5000 + "</edXML>").encode()


def _huge_text() -> bytes:
    return (f'<edXML xmlns="{NS}"><x>' + "A" * (70 * 1024 * 1024) + "</x></edXML>").encode()


def _non_utf8() -> bytes:
    return build_package(edoc()).replace("Cà Mau".encode(), "Cà Mau".encode("latin-1"), 1)


def _unknown_encoding_declared() -> bytes:
    # ISO-8859-x, windows-125x and UTF-16 are read (test_xmlsafe_encodings); others are not.
    return b'<?xml version="1.0" encoding="EBCDIC-US"?><edXML xmlns="' + NS.encode() + b'"/>'


def _with_payload(payload: str) -> bytes:
    text = build_package(edoc()).decode()
    start = text.index('">', text.index("<edXML:ContentTransferEncoded")) + 2
    end = text.index("</edXML:ContentTransferEncoded>")
    return (text[:start] + payload + text[end:]).encode()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.pdf", b"\0" * (200 * 1024 * 1024))
    return _with_payload(base64.b64encode(buffer.getvalue()).decode())


def _lying_zip_bomb() -> bytes:
    """A zip whose header under-declares the entry size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.pdf", b"\0" * (120 * 1024 * 1024))
    raw = bytearray(buffer.getvalue())
    # Patch the uncompressed size in the central directory and local header to 1 KiB.
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (1024).to_bytes(4, "little")
    raw[22:26] = (1024).to_bytes(4, "little")
    return _with_payload(base64.b64encode(bytes(raw)).decode())


def _bad_base64() -> bytes:
    return _with_payload("this is ### not base64 !!")


def _missing_required() -> bytes:
    text = build_package(edoc()).decode()
    start = text.index("<edXML:Code>")
    end = text.index("</edXML:Code>") + len("</edXML:Code>")
    return (text[:start] + text[end:]).encode()


def _over_long() -> bytes:
    return build_package(edoc(subject="S" * 501))


def _bad_date() -> bytes:
    return build_package(edoc()).replace(
        b"<edXML:PromulgationDate>2026/11/20<", b"<edXML:PromulgationDate>2026-13-45<"
    )


CASES: list[tuple[str, Callable[[], bytes], str, str]] = [
    # (case, input, expected reason, words the message must contain)
    ("xxe_file", _file("xxe_file.xml"), "xml_doctype_forbidden", "DOCTYPE"),
    ("xxe_http", _file("xxe_http.xml"), "xml_doctype_forbidden", "DOCTYPE"),
    ("xxe_parameter_entity", _file("xxe_parameter.xml"), "xml_doctype_forbidden", "DOCTYPE"),
    ("billion_laughs", _file("billion_laughs.xml"), "xml_doctype_forbidden", "entity"),
    ("quadratic_blowup", _quadratic, "xml_doctype_forbidden", "DOCTYPE"),
    ("deep_nesting", _deep, "xml_too_deep", "nesting deeper"),
    ("huge_text_node", _huge_text, "xml_too_large", "over the limit"),
    (
        "wrong_namespace",
        _file("wrong_namespace.xml"),
        "wrong_namespace",
        "expected edXML in namespace",
    ),
    ("truncated", _file("truncated.xml"), "xml_malformed", "not well-formed"),
    ("non_utf8_bytes", _non_utf8, "xml_encoding", "not valid UTF-8"),
    ("unknown_encoding_declared", _unknown_encoding_declared, "xml_encoding", "not read"),
    ("zip_bomb", _zip_bomb, "attachment_zip_bomb", "zip bomb"),
    (
        "lying_zip_bomb",
        _lying_zip_bomb,
        "attachment_bad_zip",
        "corrupt",
    ),  # stops at the declared size
    ("bad_base64", _bad_base64, "attachment_bad_base64", "not valid base64"),
    ("missing_required_fields", _missing_required, "missing_field", "Code"),
    ("empty", lambda: b"", "xml_malformed", "empty"),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("case", "make", "reason", "words"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_refused_clearly(
    case: str, make: Callable[[], bytes], reason: str, words: str
) -> None:
    data = make()
    tracemalloc.start()
    try:
        with pytest.raises(PermanentError) as caught:
            parse_package(data)
        _, peak = (
            tracemalloc.get_traced_malloc_peak()
            if hasattr(tracemalloc, "get_traced_malloc_peak")
            else tracemalloc.get_traced_memory()
        )
    finally:
        tracemalloc.stop()
    error = caught.value
    assert error.reason == reason, str(error)
    assert words.lower() in str(error).lower()
    assert "root:" not in str(error)  # no file content (e.g. /etc/passwd) leaks into the error
    # Memory stays bounded: well under the size the attack tries to reach.
    assert peak < len(data) * 4 + 64 * 1024 * 1024


def test_xxe_content_never_leaks_into_output() -> None:
    with pytest.raises(PermanentError) as caught:
        parse_package(_file("xxe_file.xml")())
    assert "/bin/" not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "words"),
    [(_over_long, "Subject"), (_bad_date, "2026-13-45")],
    ids=["over_long_field", "wrong_date_format"],
)
def test_schema_level_mistakes_are_named(make: Callable[[], bytes], words: str) -> None:
    from connector.edxml import check_package

    result = check_package(make())
    assert result.ok  # receive level: a departure from the standard's limits is a warning
    assert any(words in str(warning) for warning in result.warnings)
    assert all(warning.line for warning in result.warnings)


def test_attachment_over_configured_limit() -> None:
    from connector.edxml.attachments import AttachmentLimits

    data = build_package(
        edoc(attachments=(Attachment("1", "big.pdf", "application/pdf", b"x" * 4096),))
    )
    with pytest.raises(PermanentError) as caught:
        parse_package(data, attachment_limits=AttachmentLimits(max_bytes=1024))
    assert caught.value.reason == "attachment_too_large"
    assert "big.pdf" in str(caught.value)
