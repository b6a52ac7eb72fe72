"""The deviation corpus: mutated copies of the shared samples, generated from schemas/*.xsd.

For every facet (length, pattern, enumeration, range, built-in type) of every element our
schemas declare, and for every required element, each shared sample that has the element
gets a copy that breaks it; plus unknown and foreign-namespace elements, optional groups
removed, repeated elements, reordered children, CRLF line ends, a BOM, stray bytes before the
declaration, other namespace prefixes, and XML that is not namespace-well-formed.

``corpus()`` returns ``Case(name, data, expected)``; ``expected`` says whether the receive
level accepts the case (with a warning naming ``element``, when set) or refuses it (naming
``element``). What is refused follows ``connector.edxml.conformance.RECEIVE_NEEDS``: the
expectation is derived here independently from the table, from the sample's own content.
Reusable by other tests (e.g. end to end): ``corpus()`` is cached per process.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from connector.edxml.model import NS
from connector.edxml.xmlsafe import parse_untrusted, strip_stray_prefix
from connector.edxml.xsdmodel import ElementDecl, SimpleType, declarations
from tests.samples import sample_paths

Q = "{" + NS + "}"


@dataclass(frozen=True)
class Expected:
    received: bool
    element: str | None = None  # the element a warning (or the refusal) names


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expected: Expected


# --------------------------------------------------------------------------- bad values
_CANDIDATES = ("#!? x", "2019-13-45", "not valid", "x", " x")


def _xsd_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # our patterns use only what Python's re reads the same way


def _bad_values(simple: SimpleType) -> Iterator[tuple[str, str]]:
    """(facet label, a value that breaks it) for each facet of a simple type."""
    patterns = [_xsd_regex(p) for p in simple.values("pattern")]
    for facet in simple.facets:
        if facet.name == "maxLength":
            yield f"maxLength{facet.value}", "x" * (int(facet.value) + 1)
        elif facet.name == "minLength":
            yield "minLength", ""
        elif facet.name == "maxInclusive":
            yield f"maxInclusive{facet.value}", str(int(facet.value) + 1)
    if simple.values("enumeration"):
        yield "enumeration", "99"
    if patterns:
        value = next(c for c in _CANDIDATES if not any(p.fullmatch(c) for p in patterns))
        yield "pattern", value
    builtin = {"positiveInteger": "0", "nonNegativeInteger": "-1", "boolean": "maybe",
               "base64Binary": "!!not base64!!"}
    if simple.builtin in builtin:
        yield simple.builtin, builtin[simple.builtin]


# --------------------------------------------------------------------------- tree helpers
def _name(path: tuple[str, ...]) -> str:
    return "/".join(path[3:]) if len(path) > 3 else "/".join(path)


def _shrunk(root: etree._Element) -> etree._Element:
    """A copy whose attachment payloads are cut to a few hundred bytes (same kind: a zip stays
    a single-entry zip with the same entry name), so header mutations check quickly."""
    tree = copy.deepcopy(root)
    for node in tree.iter("{*}ContentTransferEncoded"):
        data = base64.b64decode("".join((node.text or "").split()))
        if data.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entry = archive.infolist()[0]
                content = archive.read(entry)[:256]
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as archive:
                archive.writestr(entry.filename, content)
            data = out.getvalue()
        else:
            data = data[:256]
        node.text = base64.b64encode(data).decode("ascii")
    return tree


def _find_all(root: etree._Element, path: tuple[str, ...]) -> list[etree._Element]:
    nodes = [root]
    for name in path[1:]:
        nodes = [c for n in nodes for c in n if isinstance(c.tag, str)
                 and etree.QName(c).localname == name]
    return nodes


def _serialise(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _text(node: etree._Element | None, name: str) -> str:
    if node is None:
        return ""
    for child in node:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip()
    return ""


# --------------------------------------------------------------------------- expectations
_DATE_IN_ID = re.compile(r"^[^,]+,\d{4}/\d{2}/\d{2},")


def _expect(root: etree._Element, kind: str, path: tuple[str, ...], node: etree._Element,
            removed: bool, value: str | None) -> Expected:
    """The receive level's verdict on the mutated tree (``root`` is already mutated)."""
    name = path[-1]
    parent = path[-2] if len(path) > 1 else ""
    empty = removed or not (value or "").strip()
    refuse = Expected(False, name)
    warn = Expected(True, name)
    header = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader/{Q}MessageHeader")
    if name in ("edXMLEnvelope", "edXMLHeader", "MessageHeader"):
        return refuse
    if header is None:
        return refuse
    if (parent == "MessageHeader" and name == "From") or (parent == "From" and name == "OrganId"):
        return refuse if empty else warn
    if kind == "status":
        if name in ("ResponseFor", "StatusCode"):
            return refuse
        if parent == "ResponseFor" and name == "DocumentId":
            return refuse if empty else warn
        return warn
    if name == "To" and parent == "MessageHeader":
        others = [t for t in header.findall(f"{Q}To") if _text(t, "OrganId")]
        return warn if others else refuse
    if parent == "To" and name == "OrganId":
        others = [t for t in header.findall(f"{Q}To") if _text(t, "OrganId")]
        return warn if others else refuse
    if parent == "MessageHeader" and name == "DocumentId":
        return refuse if empty else warn
    if parent == "MessageHeader" and name == "Code":
        return refuse
    if parent == "Code":
        code = header.find(f"{Q}Code")
        both_gone = not (_text(code, "CodeNumber") or _text(code, "CodeNotation"))
        return refuse if both_gone else warn
    if name in ("PromulgationInfo", "PromulgationDate") and parent in (
            "MessageHeader", "PromulgationInfo"):
        has_date = bool(_DATE_IN_ID.match(_text(header, "DocumentId")))
        return warn if has_date else Expected(False, "PromulgationDate")
    if name == "BussinessDocType":
        return refuse
    if name in ("ContentId", "ContentTransferEncoded"):
        return refuse
    if name == "AttachmentEncoded" and not removed:
        return Expected(False, "ContentId")  # every payload twice: ContentIds collide
    if name in ("Attachment", "AttachmentEncoded") and removed:
        manifest = root.find(f"{Q}edXMLEnvelope/{Q}edXMLBody/{Q}edXMLManifest")
        refs = [] if manifest is None else manifest.findall(f"{Q}Reference")
        return Expected(False, "ContentId") if refs else warn
    return warn


# --------------------------------------------------------------------------- families
def _facet_cases(label: str, root: etree._Element, kind: str) -> Iterator[Case]:
    for path, decl in declarations(kind).walk():
        if decl.simple is None:
            continue
        nodes = _find_all(root, path)
        if not nodes:
            continue
        for facet, value in _bad_values(decl.simple):
            tree = copy.deepcopy(root)
            node = _find_all(tree, path)[0]
            node.text = value
            yield Case(f"{label}:{_name(path)}:{facet}", _serialise(tree),
                       _expect(tree, kind, path, node, False, value))


def _required_cases(label: str, root: etree._Element, kind: str) -> Iterator[Case]:
    for path, decl in declarations(kind).walk():
        if len(path) < 2 or decl.min_occurs < 1:
            continue
        tree = copy.deepcopy(root)
        nodes = _find_all(tree, path)
        if not nodes:
            continue
        parent = nodes[0].getparent()
        assert parent is not None
        for node in [n for n in nodes if n.getparent() is parent]:
            parent.remove(node)
        yield Case(f"{label}:{_name(path)}:missing", _serialise(tree),
                   _expect(tree, kind, path, nodes[0], True, None))


def _optional_group_cases(label: str, root: etree._Element, kind: str) -> Iterator[Case]:
    for path, decl in declarations(kind).walk():
        if decl.min_occurs != 0 or not decl.children:
            continue
        tree = copy.deepcopy(root)
        nodes = _find_all(tree, path)
        if not nodes:
            continue
        for node in nodes:
            parent = node.getparent()
            assert parent is not None
            parent.remove(node)
        expected = Expected(True)
        if path[-1] == "AttachmentEncoded":
            expected = _expect(tree, kind, path, nodes[0], True, None)
        yield Case(f"{label}:{_name(path)}:optional-removed", _serialise(tree), expected)


def _repeat_cases(label: str, root: etree._Element, kind: str) -> Iterator[Case]:
    for path, decl in declarations(kind).walk():
        if len(path) < 2 or decl.max_occurs != 1:
            continue
        tree = copy.deepcopy(root)
        nodes = _find_all(tree, path)
        if not nodes:
            continue
        nodes[0].addnext(copy.deepcopy(nodes[0]))
        # The first is read; a second AttachmentEncoded repeats every payload's ContentId.
        expected = (Expected(False, "ContentId") if path[-1] == "AttachmentEncoded"
                    else Expected(True, path[-1]))
        yield Case(f"{label}:{_name(path)}:repeated", _serialise(tree), expected)


def _insert(root: etree._Element, element: etree._Element) -> None:
    header = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader/{Q}MessageHeader")
    assert header is not None
    header.insert(1, element)


def _structure_cases(label: str, raw: bytes, root: etree._Element) -> Iterator[Case]:
    tree = copy.deepcopy(root)
    unknown = etree.Element(f"{Q}HubExtension")
    unknown.text = "added by a hub"
    _insert(tree, unknown)
    yield Case(f"{label}:unknown-element", _serialise(tree), Expected(True, "HubExtension"))
    tree = copy.deepcopy(root)
    foreign = etree.Element("{urn:example:hub}Routing", nsmap={"h": "urn:example:hub"})
    foreign.text = "x"
    _insert(tree, foreign)
    yield Case(f"{label}:foreign-namespace", _serialise(tree), Expected(True, "Routing"))
    tree = copy.deepcopy(root)
    header = tree.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader/{Q}MessageHeader")
    assert header is not None
    children = [c for c in header if isinstance(c.tag, str)]
    for child in reversed(children):
        header.append(child)
    yield Case(f"{label}:reordered", _serialise(tree), Expected(True, "MessageHeader"))
    body, _ = strip_stray_prefix(raw)
    lf = body.replace(b"\r\n", b"\n")
    yield Case(f"{label}:crlf", lf.replace(b"\n", b"\r\n"), Expected(True))
    yield Case(f"{label}:bom", b"\xef\xbb\xbf" + body, Expected(True))
    yield Case(f"{label}:stray-bytes", b"1212\n" + body, Expected(True))
    other = body.replace(b"edXML:", b"q102:").replace(b"xmlns:edXML=", b"xmlns:q102=")
    yield Case(f"{label}:prefix-q102", other, Expected(True))
    default = body.replace(b"edXML:", b"").replace(b'xmlns:edXML="' + NS.encode() + b'"', b"")
    yield Case(f"{label}:no-prefix", default, Expected(True))
    undeclared = body.replace(b'xmlns:edXML="' + NS.encode() + b'"', b"")
    yield Case(f"{label}:undeclared-prefix", undeclared, Expected(False))


@functools.cache
def corpus() -> tuple[Case, ...]:
    """Every case, for every shared sample (empty when ../shared is absent)."""
    cases: list[Case] = []
    for path in sample_paths():
        raw = path.read_bytes()
        root = parse_untrusted(raw)
        kind = "status" if root.find(f".//{Q}StatusCode") is not None else "edoc"
        label = path.stem
        small = _shrunk(root)
        for family in (_facet_cases, _required_cases, _optional_group_cases, _repeat_cases):
            cases.extend(family(label, small, kind))
        cases.extend(_structure_cases(label, raw, root))
    return tuple(cases)


def declaration(kind: str, path: tuple[str, ...]) -> ElementDecl | None:
    node: ElementDecl | None = declarations(kind)
    for name in path[1:]:
        node = node.child(name) if node is not None else None
    return node


def hub_deviant(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """``data`` (an unsigned edoc) with departures real hubs deliver, taken from the corpus
    families: a TraceHeader without OrganId, a From/OrganName over its maxLength, an unknown
    element. Returns the bytes and the elements the receive level's warnings must name."""
    root = parse_untrusted(data)
    header = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader")
    assert header is not None
    message = header.find(f"{Q}MessageHeader")
    assert message is not None
    traces = header.find(f"{Q}TraceHeaderList")
    if traces is None:
        traces = etree.Element(f"{Q}TraceHeaderList")
        message.addnext(traces)
    trace = etree.Element(f"{Q}TraceHeader")
    etree.SubElement(trace, f"{Q}Timestamp").text = "2026/11/20 08:00:00"
    traces.insert(0, trace)
    name = message.find(f"{Q}From/{Q}OrganName")
    sender = message.find(f"{Q}From")
    assert sender is not None
    if name is None:
        name = etree.SubElement(sender, f"{Q}OrganName")
    limit = declaration("edoc", ("edXML", "edXMLEnvelope", "edXMLHeader", "MessageHeader",
                                 "From", "OrganName"))
    assert limit is not None and limit.simple is not None
    name.text = "Ủy ban nhân dân " * (int(limit.simple.values("maxLength")[0]) // 16 + 1)
    _insert(root, etree.Element(f"{Q}HubExtension"))
    return _serialise(root), ("OrganId", "OrganName", "HubExtension")
