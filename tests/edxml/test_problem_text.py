"""What a received package says about itself never reaches logs, events or deliveries raw.

Every problem and warning of the receive level is bounded (message, path, element) and shows
line breaks, other control characters and bidirectional overrides escaped, whatever part of
the package carries them: element names, foreign namespace URIs, values of fields receiving
needs and of fields it does not. Generated: every carrier x every hostile text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from connector.edxml import build_package, check_package
from connector.edxml.model import NS
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.xmlsafe import UnsafeXmlError, parse_untrusted, strip_stray_prefix
from tests.edxml.factories import edoc, status
from tests.samples import sample_params

MAX_TEXT = 1000  # a whole problem, line and path included
_RAW = re.compile(r"[\r\n\x0b\x0c\u2028\u2029\u202a-\u202e\u2066-\u2069]")

HOSTILE = {
    "long": "A" * 200_000,
    "fake log line": "x\n2026-12-07 12:00:00 INFO status 01 sent\r\nEVIL",
    "bidi override": "abc\u202egnp.exe",
    "long and lines": ("line\n" * 50_000),
}


def _edoc_with(tag: str, value: str) -> bytes:
    text = build_package(edoc()).decode()
    start = text.index(f"<edXML:{tag}>") + len(f"<edXML:{tag}>")
    end = text.index(f"</edXML:{tag}>", start)
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace("\r", "&#13;")
    return (text[:start] + escaped + text[end:]).encode()


def _status_with(value: str) -> bytes:
    text = build_package(status()).decode()
    return re.sub(r"<edXML:StatusCode>\d+</edXML:StatusCode>",
                  f"<edXML:StatusCode>{value.replace(chr(13), '&#13;')}</edXML:StatusCode>",
                  text).encode()


def _foreign_namespace(value: str) -> bytes:
    text = build_package(edoc()).decode()
    uri = "urn:x:" + value.replace("\n", "&#10;").replace("\r", "&#13;")
    return text.replace("<edXML:Subject>", f'<f:Note xmlns:f="{uri}"/><edXML:Subject>', 1).encode()


def _unknown_element(value: str) -> bytes:
    name = "Z" + re.sub(r"[^A-Za-z]", "", value)[:50_000]
    text = build_package(edoc()).decode()
    return text.replace("<edXML:Subject>", f"<edXML:{name}/><edXML:Subject>", 1).encode()


CARRIERS = {
    "Email (pattern, not needed)": lambda v: _edoc_with("Email", v),
    "Subject (length, not needed)": lambda v: _edoc_with("Subject", v),
    "DocumentId (needed)": lambda v: _edoc_with("DocumentId", "x" + v),
    "StatusCode (needed)": _status_with,
    "foreign namespace URI": _foreign_namespace,
    "unknown element name": _unknown_element,
}


def _problems(data: bytes) -> list[Problem]:
    result = check_package(data)
    problems = [*result.problems, *result.warnings]
    try:
        parse_untrusted(data)
    except UnsafeXmlError as exc:
        problems.append(Problem(exc.message))  # the message as raised, checked below as well
        assert len(exc.message) <= MAX_TEXT and not _RAW.search(exc.message), exc.message[:300]
    return problems


@pytest.mark.parametrize("text", sorted(HOSTILE))
@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_problems_are_bounded_and_escaped(carrier: str, text: str) -> None:
    problems = _problems(CARRIERS[carrier](HOSTILE[text]))
    for problem in problems:
        shown = str(problem)
        assert len(shown) <= MAX_TEXT, (carrier, text, len(shown), shown[:200])
        assert not _RAW.search(shown), (carrier, text, shown[:300])
        assert problem.element is None or len(problem.element) <= 100


def test_edxml_error_text_is_bounded() -> None:
    with pytest.raises(EdxmlError) as caught:
        from connector.edxml import parse_package

        parse_package(_status_with("9" * 100_000 + "\nFAKE"))
    assert len(str(caught.value)) <= MAX_TEXT and "\n" not in str(caught.value)


@pytest.mark.parametrize("path", sample_params())
def test_a_minified_package_has_the_same_warnings(path: Path) -> None:
    """Hubs that write a package on one line: each warning still names its own element (an
    error was attributed to the first element of its name on the same line, and the others
    merged into it)."""
    pretty = strip_stray_prefix(path.read_bytes())[0]
    root = etree.fromstring(pretty, etree.XMLParser(remove_blank_text=True))
    # Three more bad Timestamps so that several warnings share a name.
    header = root.find(f"{{{NS}}}edXMLEnvelope/{{{NS}}}edXMLHeader")
    assert header is not None
    trace_list = etree.SubElement(header, f"{{{NS}}}TraceHeaderList") if header.find(
        f"{{{NS}}}TraceHeaderList") is None else header.find(f"{{{NS}}}TraceHeaderList")
    for index in range(3):
        trace = etree.Element(f"{{{NS}}}TraceHeader")
        etree.SubElement(trace, f"{{{NS}}}OrganId").text = f"000.00.00.X0{index}"
        etree.SubElement(trace, f"{{{NS}}}Timestamp").text = f"2019-01-0{index + 1}T00:00"
        trace_list.insert(0, trace)
    one_line = etree.tostring(root)
    several = etree.tostring(root, pretty_print=True)
    assert b"\n" not in one_line.strip()

    def shown(data: bytes) -> list[tuple[str, str]]:
        result = check_package(data)
        return sorted((w.path, w.message) for w in [*result.problems, *result.warnings])

    assert shown(one_line) == shown(several)
