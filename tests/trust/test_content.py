"""Attachment content: the main document from the manifest, and declared type vs content."""

from __future__ import annotations

from connector.edxml.model import NS, Attachment
from connector.trust.content import content_problem, main_content_id, main_first


def _manifest(*cids: str) -> bytes:
    refs = "".join(f"<edXML:Reference><edXML:ContentId>{c}</edXML:ContentId></edXML:Reference>"
                   for c in cids)
    return (f'<edXML xmlns="{NS}"><edXML:edXMLEnvelope xmlns:edXML="{NS}"><edXML:edXMLBody>'
            f"<edXML:edXMLManifest>{refs}</edXML:edXMLManifest></edXML:edXMLBody>"
            "</edXML:edXMLEnvelope></edXML>").encode()


def test_main_content_id_is_the_first_reference_with_or_without_cid() -> None:
    assert main_content_id(_manifest("cid:7", "cid:1")) == "7"
    assert main_content_id(_manifest("3")) == "3"
    assert main_content_id(_manifest()) is None
    assert main_content_id(b"not xml at all") is None


def test_main_first_keeps_the_others_in_order() -> None:
    items = tuple(Attachment(c, c, "application/pdf", b"%PDF-") for c in "123")
    assert [a.content_id for a in main_first(items, "3")] == ["3", "1", "2"]
    assert [a.content_id for a in main_first(items, "9")] == ["1", "2", "3"]


def test_content_problem_reasons() -> None:
    def problem(data: bytes, content_type: str = "application/octet-stream",
                name: str = "x.bin") -> str | None:
        found = content_problem(Attachment("1", name, content_type, data))
        return found[0] if found else None

    assert problem(b"MZ\x90") == "executable_content"
    assert problem(b"%PDF-1.7", "application/pdf; name=x.pdf") is None
    assert problem(b"junk" + b"%PDF-1.7", "application/pdf") is None  # header within 1 KiB
    assert problem(b"hello", "application/pdf") == "content_type_mismatch"
    assert problem(b"hello", name="X.PDF") == "content_type_mismatch"
    assert problem(b"hello", "application/zip") == "content_type_mismatch"
    assert problem(b"PK\x03\x04", "application/zip") is None
    assert problem(b"plain text", "text/plain", "a.txt") is None
