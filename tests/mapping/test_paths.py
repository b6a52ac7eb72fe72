"""JSON paths, the writable XPath subset, and the hardened XML record parser."""

from __future__ import annotations

import pytest
from lxml import etree

from connector.mapping.paths import (
    MISSING,
    PathSyntaxError,
    RecordSyntaxError,
    parse_json_path,
    parse_xml_path,
    parse_xml_record,
)


def test_json_dotted_and_pointer() -> None:
    data = {"a": {"b/c": [10, {"d": "x"}]}, "e": {"f": 1}}
    assert parse_json_path("/a/b~1c/1/d").get(data) == "x"
    assert parse_json_path("e.f").get(data) == 1
    assert parse_json_path("e.g").get(data) is MISSING
    out: dict[str, object] = {}
    parse_json_path("x.y").set(out, 3)
    assert out == {"x": {"y": 3}}


@pytest.mark.parametrize("text", ["", " a", "a..b", ".a", "a/b", "a[0]", "/a//b"])
def test_bad_json_paths(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_json_path(text)


def test_xml_paths_read_and_write_with_namespaces() -> None:
    ns = {"q": "urn:q"}
    root = etree.fromstring(b'<R xmlns:q="urn:q"><q:A x="1">t</q:A><B>u</B><B>v</B></R>')
    assert parse_xml_path("q:A/@x", ns).get_all(root) == ["1"]
    assert parse_xml_path("q:A", ns).get_all(root) == ["t"]
    assert parse_xml_path("B", ns).get_all(root) == ["u", "v"]
    out = etree.Element("R")
    parse_xml_path("C/D/@k", ns).write(out, ["v"])
    parse_xml_path("C/D", ns).write(out, ["text"])
    parse_xml_path("L/I", ns).write(out, ["1", "2"], many=True)
    assert etree.tostring(out) == (b'<R><C><D k="v">text</D></C><L><I>1</I><I>2</I></L></R>')


@pytest.mark.parametrize("text", ["/R/A", "//A", "A[1]", "A/@x/B", "p:A", "A/*", "text()",
                                  "A | B"])
def test_bad_xml_paths(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_xml_path(text, {})


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
    b'<!DOCTYPE r SYSTEM "http://example.invalid/x.dtd"><r/>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b"<r><unclosed></r>",
])
def test_hostile_or_broken_xml_records_refused(body: bytes) -> None:
    with pytest.raises(RecordSyntaxError):
        parse_xml_record(body)
