"""Attachment payloads outside the default namespace, as some peers write them.

A peer that binds the QCVN namespace to a prefix on the root and writes ``AttachmentEncoded``
un-prefixed puts the payloads in no namespace: the parser reads them (by design) and the
receive level must say so, not that they were ignored. Payloads in a foreign namespace are
ignored by both, like every other foreign element (an extra attachment cannot be slipped in
under another namespace). Generated over every edoc sample.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from connector.edxml import check_package
from connector.edxml.model import NS
from connector.edxml.xmlsafe import strip_stray_prefix
from tests.samples import sample_params


def _text(path: Path) -> str:
    return strip_stray_prefix(path.read_bytes())[0].decode()


@pytest.mark.parametrize("path", sample_params("edoc_*.edxml"))
def test_unnamespaced_payloads_are_read_and_said_to_be(path: Path) -> None:
    text = _text(path)
    original = check_package(text.encode())
    prefixed_root = text.replace(f'<edXML xmlns="{NS}">', f'<edXML:edXML xmlns:edXML="{NS}">', 1)
    prefixed_root = prefixed_root.replace("</edXML>", "</edXML:edXML>")
    assert prefixed_root != text
    result = check_package(prefixed_root.encode())
    assert result.ok, [str(p) for p in result.problems]
    # (the un-prefixed legacy Signature placeholder is in no namespace too: not read)
    assert replace(result.package, legacy_signature=None) == replace(
        original.package, legacy_signature=None)
    assert result.package.attachments == original.package.attachments
    said = [w for w in result.warnings if w.element == "AttachmentEncoded"]
    assert said and all("ignored" not in w.message for w in said), [str(w) for w in said]


@pytest.mark.parametrize("path", sample_params("edoc_*.edxml"))
def test_payloads_in_a_foreign_namespace_are_ignored(path: Path) -> None:
    text = _text(path)
    original = check_package(text.encode())
    extra = ('<x:AttachmentEncoded xmlns:x="urn:example:other"><x:Attachment>'
             "<x:ContentId>cid:slipped</x:ContentId><x:AttachmentName>x.pdf</x:AttachmentName>"
             "<x:ContentTransferEncoded>JVBERi0xLjQK</x:ContentTransferEncoded>"
             "</x:Attachment></x:AttachmentEncoded></edXML>")
    data = text[: text.rindex("</edXML>")] + extra
    result = check_package(data.encode())
    assert result.ok, [str(p) for p in result.problems]
    assert result.package == original.package
    assert result.package.attachments == original.package.attachments
    assert any(w.element == "AttachmentEncoded" and "ignored" in w.message
               for w in result.warnings)
