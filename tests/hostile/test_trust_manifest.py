"""ContentId and routing games through B's whole inbound pipeline.

A compromised hub rewrites the package structure around genuine sealed documents: two
attachments under one ContentId, manifest References without payload and payloads without
Reference, a Reference outside the manifest that a lax reader could take for the main
document, a main document zipped (alone or with others), and To lists naming B only where
the parser does not look (a second OrganId, a foreign-namespace To). Each case: the verdict
and its reason, nothing delivered when refused, no 02 to anyone for a misrouted document.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from lxml import etree

from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.edxml import build_package
from connector.edxml.model import NS, Attachment
from connector.store.states import Direction, InboundState
from connector.trust.xmldsig import sign_package
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.hostile.test_trust_zip import zipped
from tests.hostile.trust_kit import B_ID, PLACEHOLDER, Kit, document, list_for_b, pdf

E = f"{{{NS}}}"


def _edit(raw: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(raw)
    change(root)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data


def _manifest(root: etree._Element) -> etree._Element:
    found = root.find(f".//{E}edXMLManifest")
    assert found is not None
    return found


def _header(root: etree._Element) -> etree._Element:
    found = root.find(f".//{E}MessageHeader")
    assert found is not None
    return found


def _drop_reference(cid: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        manifest = _manifest(root)
        for ref in list(manifest):
            if (ref.findtext(f"{E}ContentId") or "").removeprefix("cid:") == cid:
                manifest.remove(ref)
    return change


def _stray_reference(cid: str, where: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        ref = etree.Element(f"{E}Reference")
        etree.SubElement(ref, f"{E}ContentId").text = f"cid:{cid}"
        parent = {"header": _header(root), "manifest": _manifest(root),
                  "body": root.find(f".//{E}edXMLBody")}[where]
        assert parent is not None
        parent.insert(0, ref)
    return change


def _to_games(how: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        to = _header(root).find(f"{E}To")
        assert to is not None
        if how == "second OrganId":
            extra = etree.SubElement(to, f"{E}OrganId")
            extra.text = B_ID
        elif how == "foreign-namespace To":
            foreign = etree.Element("{urn:evil}To")
            etree.SubElement(foreign, f"{E}OrganId").text = B_ID
            to.addprevious(foreign)
        elif how == "un-namespaced To":
            bare = etree.Element("To")
            etree.SubElement(bare, "OrganId").text = B_ID
            to.addprevious(bare)
        elif how == "To in a comment":
            to.addprevious(etree.Comment(f"<edXML:To><edXML:OrganId>{B_ID}</edXML:OrganId>"))
    return change


def _signed(kit: Kit, raw: bytes, xml: str) -> bytes:
    """``raw`` with the QCVN placeholder after its MessageHeader, or XML-signed by ``xml``."""
    if xml == "placeholder":
        marker = b"</edXML:MessageHeader>"
        assert marker in raw
        return raw.replace(marker, marker + PLACEHOLDER.raw_xml, 1)
    return sign_package(raw, kit.identity(xml))


def _take(world: World, b: Runtime, raw: bytes) -> tuple[str | None, int]:  # noqa: F811
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    if package.last_error is None:
        assert package.inbound_state is InboundState.NOTIFIED
    return (package.last_error.reason if package.last_error else None,
            len(world.b.deliveries(kind=None)))


def _corrupt_zip(raw: bytes) -> bytes:
    """The package with its zipped payload's deflate stream damaged (base64 re-encoded)."""
    root = etree.fromstring(raw)
    payload = root.find(f".//{E}ContentTransferEncoded")
    assert payload is not None and payload.text
    data = bytearray(base64.b64decode(payload.text))
    for index in range(60, 90):
        data[index] ^= 0xFF
    payload.text = base64.b64encode(bytes(data)).decode()
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def _case(kit: Kit, name: str) -> tuple[bytes, str | None]:
    main = pdf("1", kit.main_pdf("seal:A"))
    sealed_only = pdf("2", kit.annex_pdf("seal:A"))
    exe = Attachment("2", "x.pdf", "application/pdf", b"MZ" + b"\x00" * 64)
    plain = build_package(document("A", attachments=(main,)))
    two = build_package(document("A", attachments=(main, sealed_only)))
    cases: dict[str, tuple[bytes, str | None]] = {
        "two payloads under one ContentId": (
            build_package(document("A", attachments=(main, Attachment(
                "1", "x.pdf", "application/pdf", kit.annex_pdf("seal:A"))))),
            "schema"),
        "Reference without payload first": (
            _edit(plain, _stray_reference("9", "manifest")), "schema"),
        # Checked like any attachment (R4) and delivered: the manifest need not list it.
        "payload without Reference (sealed annex)": (_edit(two, _drop_reference("2")), None),
        "payload without Reference (executable)": (
            _edit(build_package(document("A", attachments=(main, exe))), _drop_reference("2")),
            "executable_content"),
        # A Reference outside the manifest names nothing: the genuine main stays the main.
        "Reference in the header naming the annex": (
            _edit(two, _stray_reference("2", "header")), None),
        "Reference in the body before the manifest": (
            _edit(two, _stray_reference("2", "body")), None),
        # ... nor move the main document away from the manifest's first (a sealed-only
        # first Reference is the main document, and refused as one: R3).
        "sealed-only main, the full one named outside the manifest": (
            _edit(build_package(document("A", attachments=(sealed_only, pdf(
                "1", kit.main_pdf("seal:A"))))), _stray_reference("1", "header")),
            "personal_signature_missing"),
        "main document zipped alone": (
            build_package(document("A", attachments=(main,)), zip_attachments=True), None),
        "main document zipped with another file": (
            build_package(document("A", attachments=(Attachment(
                "1", "cong-van.zip", "application/zip",
                zipped(("cv.pdf", kit.main_pdf("seal:A")), ("readme.txt", b"x"))),))),
            "main_document_not_pdf"),
        "main document zipped, its stream corrupt": (
            _corrupt_zip(build_package(document("A", attachments=(main,)), zip_attachments=True)),
            "schema"),  # the parser's problem (attachment_bad_zip), refused once, never retried
        "To: a second OrganId": (_edit(build_package(document(
            "A", to=("C",), attachments=(main,))), _to_games("second OrganId")),
            "not_addressed_to_us"),
        "To: foreign namespace": (_edit(build_package(document(
            "A", to=("C",), attachments=(main,))), _to_games("foreign-namespace To")),
            "not_addressed_to_us"),
        # Un-namespaced children are read as QCVN ones (peers send them): B is a recipient,
        # as the hub's peek also says.
        "To: un-namespaced": (_edit(build_package(document(
            "A", to=("C",), attachments=(main,))), _to_games("un-namespaced To")), None),
        "To: in a comment": (_edit(build_package(document(
            "A", to=("C",), attachments=(main,))), _to_games("To in a comment")),
            "not_addressed_to_us"),
    }
    return cases[name]


NAMES = ["two payloads under one ContentId", "Reference without payload first",
         "payload without Reference (sealed annex)", "payload without Reference (executable)",
         "Reference in the header naming the annex", "Reference in the body before the manifest",
         "sealed-only main, the full one named outside the manifest",
         "main document zipped alone", "main document zipped with another file",
         "main document zipped, its stream corrupt",
         "To: a second OrganId", "To: foreign namespace", "To: un-namespaced", "To: in a comment"]


@pytest.mark.parametrize("xml", ["placeholder", "seal:A"])
@pytest.mark.parametrize("name", NAMES)
def test_structure_games(world: World, b: Runtime, kit: Kit, name: str, xml: str  # noqa: F811
                         ) -> None:
    raw, expected = _case(kit, name)
    reason, delivered = _take(world, b, _signed(kit, raw, xml))
    assert reason == expected
    assert delivered == (1 if reason is None else 0)
    if reason == "not_addressed_to_us":
        assert status_notices(b) == []
