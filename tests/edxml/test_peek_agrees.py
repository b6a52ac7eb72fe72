"""``peek`` (routing facts: the hub, the inbound store facts) and the parser (what is
authenticated, checked for addressing and mapped back) read the same facts from every package
the receive level accepts: generated from the deviation corpus, plus duplicated OrganIds
inside one To/From and a second Bussiness in the other spelling (one reader taking the first,
the other another one would let the hub route where the receiver never looked).
"""

from __future__ import annotations

import pytest

from connector.edxml import EdocPackage, StatusPackage, check_package, peek
from connector.edxml.xmlsafe import strip_stray_prefix
from tests.edxml.deviations import corpus
from tests.samples import sample_paths

Q = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"


def _twisted(data: bytes) -> list[tuple[str, bytes]]:
    text = data.decode("utf-8", errors="strict") if data[:3] != b"\xef\xbb\xbf" else ""
    out = []
    if "<edXML:To>" in text:
        first_id = text.index("</edXML:OrganId>", text.index("<edXML:To>"))
        out.append(("To with two OrganIds", (text[:first_id] + "</edXML:OrganId><edXML:OrganId>"
                                              "EVIL.00.00.X99" + text[first_id:]).encode()))
        out.append(("To whose first OrganId is empty", text.replace(
            "<edXML:To>", "<edXML:To><edXML:OrganId/>", 1).encode()))
    if "<edXML:From>" in text:
        out.append(("From with two OrganIds", text.replace(
            "<edXML:From>", "<edXML:From><edXML:OrganId>EVIL.00.00.X98</edXML:OrganId>", 1
        ).encode()))
    if "<edXML:BussinessDocType>" in text:
        out.append(("second Business spelling", text.replace(
            "</edXML:TraceHeaderList>", "<edXML:Business><edXML:BusinessDocType>1"
            "</edXML:BusinessDocType></edXML:Business></edXML:TraceHeaderList>", 1).encode()))
    return out


def _cases() -> list[tuple[str, bytes]]:
    cases = []
    for case in corpus():
        if case.expected.received:
            cases.append((case.name, case.data))
            if case.name.endswith(":crlf"):
                cases += [(f"{case.name}:{name}", data) for name, data in _twisted(case.data)]
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "data"), CASES or [pytest.param("", b"", marks=pytest.mark.skip(
    reason="no samples"))], ids=[c[0] for c in CASES] or None)
def test_peek_reads_what_the_parser_reads(name: str, data: bytes) -> None:
    result = check_package(data)
    if not result.ok:
        return  # a twisted case may be refused: then nobody routes on it
    package = result.package
    summary = peek(data)
    assert summary.from_organ_id == package.from_.organ_id, name
    if isinstance(package, EdocPackage):
        assert summary.kind == "edoc"
        assert summary.to_organ_ids == tuple(t.organ_id for t in package.to), name
        assert summary.document_id == package.document_id, name
        if package.business is not None:
            assert summary.business_doc_type == int(package.business.business_doc_type), name
    else:
        assert isinstance(package, StatusPackage)
        assert summary.kind == "status"
        assert summary.document_id == package.response_for.document_id, name
        assert summary.status_code == package.status_code.value, name
        assert summary.response_for_organ_id == package.response_for.organ_id, name


def _shadowed(text: str, name: str, namespace: str) -> bytes:
    """A copy of the first ``name`` element moved to another namespace (none, or a foreign
    one), with other OrganIds and DocumentIds, put before it: a shadow that one reader might
    take for QCVN's."""
    start = text.index(f"<edXML:{name}>")
    end = text.index(f"</edXML:{name}>", start) + len(f"</edXML:{name}>")
    prefix = "s:" if namespace else ""
    shadow = text[start:end].replace("edXML:", prefix)
    shadow = shadow.replace(f"<{prefix}{name}>",
                            f'<{prefix}{name} xmlns{":s" if namespace else ""}="{namespace}">', 1)
    for field in ("OrganId", "DocumentId"):
        shadow = shadow.replace(f"<{prefix}{field}>", f"<{prefix}{field}>SHADOW.")
    if name == "DocumentId":
        shadow = shadow.replace('">', '">SHADOW.', 1)
    return (text[:start] + shadow + text[start:]).encode()


SHADOWED = ("From", "To", "DocumentId", "ResponseFor")


@pytest.mark.parametrize("namespace", ["", "urn:example:hub"])
@pytest.mark.parametrize("name", SHADOWED)
def test_an_element_outside_the_qcvn_namespace_shadows_nothing(name: str, namespace: str) -> None:
    checked = 0
    for path in sample_paths():
        text = strip_stray_prefix(path.read_bytes())[0].decode()
        original = check_package(text.encode())
        if f"<edXML:{name}>" not in text or not original.ok:
            continue
        data = _shadowed(text, name, namespace)
        result = check_package(data)
        assert result.ok, [str(p) for p in result.problems]
        assert result.package == original.package
        assert "SHADOW" not in repr(peek(data))
        assert any(w.element == name and "ignored" in w.message for w in result.warnings), [
            str(w) for w in result.warnings]
        checked += 1
    if not checked and sample_paths():
        pytest.fail(f"no sample has {name}")
