"""Content checks on receipt, as strict as on sending, per attachment and whatever its position.

Families: every executable format × every declared type × main or annex; every non-PDF
content declared or named PDF; zips that are not; PDFs declared as something else (still held
to R4); and the main document taken from the manifest, not from the payload order.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from connector.edxml import build_package
from connector.edxml.model import NS, Attachment
from connector.trust.content import check_attachments, main_content_id, main_first
from connector.trust.pdf_policy import PdfPolicy
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from tests.hostile.trust_kit import Kit, document, three_agency_pki

EXECUTABLES = {
    "PE": b"MZ\x90\x00\x03" + b"\x00" * 64,
    "ELF": b"\x7fELF\x02\x01\x01" + b"\x00" * 64,
    "Mach-O 32": b"\xfe\xed\xfa\xce" + b"\x00" * 64,
    "Mach-O 64": b"\xcf\xfa\xed\xfe" + b"\x00" * 64,
    "Mach-O fat": b"\xca\xfe\xba\xbe" + b"\x00" * 64,
    "script": b"#!/bin/sh\nrm -rf /\n",
}
DECLARED = ("application/pdf", "application/octet-stream", "application/zip",
            "application/msword")


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


NOT_PDF = {
    "text": "Công văn số 12".encode(),
    "zip": _zip("a.txt", b"x"),
    "docx": _zip("word/document.xml", b"<w:document/>"),
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
    "empty": b"",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def kit(pki: DemoPki) -> Kit:
    return Kit(pki)


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)


def _reasons(items: tuple[Attachment, ...], trust: TrustStore, main: str = "1"
             ) -> dict[str, str | None]:
    checks = check_attachments(items, main, trust, PdfPolicy())
    return {i.content_id: i.reason for i in checks.items}


@pytest.mark.parametrize("position", ["main", "annex"])
def test_executables_are_refused_whatever_they_are_declared_as(
    kit: Kit, trust: TrustStore, position: str
) -> None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    wrong = []
    for (what, data), declared in itertools.product(EXECUTABLES.items(), DECLARED):
        suspect = Attachment("2" if position == "annex" else "1", "tai-lieu.pdf", declared, data)
        items = (main, suspect) if position == "annex" else (suspect,)
        got = _reasons(items, trust)[suspect.content_id]
        if got != "executable_content":
            wrong.append(f"{what} declared {declared} as {position}: {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("position", ["main", "annex"])
@pytest.mark.parametrize("claim", ["declared application/pdf", "named .pdf"])
def test_what_claims_to_be_a_pdf_must_be_one(
    kit: Kit, trust: TrustStore, position: str, claim: str
) -> None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    for what, data in NOT_PDF.items():
        declared, name = (("application/pdf", "file.bin") if claim.startswith("declared")
                          else ("application/octet-stream", "file.pdf"))
        suspect = Attachment("2" if position == "annex" else "1", name, declared, data)
        items = (main, suspect) if position == "annex" else (suspect,)
        assert _reasons(items, trust)[suspect.content_id] == "content_type_mismatch", what


def test_a_declared_zip_must_be_a_zip(kit: Kit, trust: TrustStore) -> None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    for what, data in NOT_PDF.items():
        if data.startswith(b"PK"):
            continue
        suspect = Attachment("2", "phu-luc.zip", "application/zip", data)
        assert _reasons((main, suspect), trust)["2"] == "content_type_mismatch", what


@pytest.mark.parametrize("declared", ["application/msword", "application/octet-stream",
                                      "text/plain"])
def test_a_pdf_is_held_to_r4_whatever_its_declared_type(
    kit: Kit, trust: TrustStore, declared: str
) -> None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    unsealed = Attachment("2", "phu-luc.doc", declared, kit.annex_pdf("none"))
    sealed = Attachment("3", "phu-luc-2.doc", declared, kit.annex_pdf("seal:A"))
    reasons = _reasons((main, unsealed, sealed), trust)
    assert reasons == {"1": None, "2": "organisation_signature_missing", "3": None}


@pytest.mark.parametrize("what", sorted(NOT_PDF))
def test_the_main_document_must_be_a_pdf(kit: Kit, trust: TrustStore, what: str) -> None:
    main = Attachment("1", "cong-van.doc", "application/msword", NOT_PDF[what])
    annex = Attachment("2", "phu-luc.signed.pdf", "application/pdf", kit.annex_pdf("seal:A"))
    assert _reasons((main, annex), trust)["1"] == "main_document_not_pdf"


def test_an_exe_main_document_with_a_replayed_sealed_annex_is_refused(
    kit: Kit, trust: TrustStore
) -> None:
    exe = Attachment("1", "cong-van.signed.pdf", "application/pdf", EXECUTABLES["PE"])
    annex = Attachment("2", "phu-luc.signed.pdf", "application/pdf", kit.annex_pdf("seal:A"))
    checks = check_attachments((exe, annex), "1", trust, PdfPolicy())
    assert checks.main is not None and checks.main.reason == "executable_content"
    assert [i.reason for i in checks.failures] == ["executable_content"]


def _manifest_reordered(raw: bytes, order: list[str]) -> bytes:
    """The same package with its manifest References in ``order`` (by ContentId)."""
    root = etree.fromstring(raw)
    manifest = root.find(f".//{{{NS}}}edXMLManifest")
    assert manifest is not None
    refs = {r.findtext(f"{{{NS}}}ContentId", "").removeprefix("cid:"): r for r in manifest}
    for ref in list(manifest):
        manifest.remove(ref)
    for cid in order:
        manifest.append(refs[cid])
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data


def test_the_main_document_is_the_manifests_first_whatever_the_payload_order(
    kit: Kit, trust: TrustStore
) -> None:
    annex = Attachment("1", "phu-luc.signed.pdf", "application/pdf", kit.annex_pdf("seal:A"))
    main = Attachment("2", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    raw = _manifest_reordered(build_package(document("A", attachments=(annex, main))),
                              ["2", "1"])
    assert main_content_id(raw) == "2"
    assert [a.content_id for a in main_first((annex, main), "2")] == ["2", "1"]
    checks = check_attachments((annex, main), "2", trust, PdfPolicy())
    assert [(i.content_id, i.role, i.reason) for i in checks.items] == [
        ("2", "main", None), ("1", "attachment", None)]
    # Taken in payload order, the sealed-only annex would have failed as a main document.
    wrong = check_attachments((annex, main), "1", trust, PdfPolicy())
    assert wrong.items[0].reason == "personal_signature_missing"


@pytest.mark.parametrize("surprise", [AttributeError("no attribute 'external_md_algorithm'"),
                                      ValueError("error parsing asn1 value"),
                                      RecursionError("maximum recursion depth exceeded"),
                                      NotImplementedError("unsupported")])
def test_a_library_surprise_on_hostile_bytes_is_that_files_refusal(
    kit: Kit, trust: TrustStore, monkeypatch: pytest.MonkeyPatch, surprise: Exception
) -> None:
    """pyHanko raises AttributeError/ValueError on some damaged CMS blobs (found by mutating
    the signature of a sealed PDF): the attachment is refused with a reason, never an
    exception that leaves the package retried with a traceback."""
    import connector.trust.content as content

    def raising(*_args: object, **_kwargs: object) -> None:
        raise surprise

    monkeypatch.setattr(content, "check_inbound", raising)
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    checks = check_attachments((main,), "1", trust, PdfPolicy())
    assert checks.items[0].reason == "pdf_unreadable"
    assert type(surprise).__name__ in (checks.items[0].problem or "")


def test_damaged_signatures_never_escape_as_exceptions(kit: Kit, trust: TrustStore) -> None:
    """Seeded mutations of the signature blobs of a sealed main document: each is a verdict."""
    import random

    base = kit.main_pdf("seal:A")
    starts = [i + 11 for i in range(len(base)) if base.startswith(b"/Contents <", i)]
    rng = random.Random(20261207)
    reasons = set()
    for _ in range(60):
        data = bytearray(base)
        start = rng.choice(starts)
        for _ in range(rng.randint(1, 6)):
            data[start + rng.randrange(3000)] = ord(rng.choice("0123456789abcdef"))
        main = Attachment("1", "m.pdf", "application/pdf", bytes(data))
        reasons.add(check_attachments((main,), "1", trust, PdfPolicy()).items[0].reason)
    assert reasons - {None}
