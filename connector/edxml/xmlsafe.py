"""The one entry point for parsing untrusted XML bytes.

Refuses, quickly and with a clear message: documents over a size limit, any DOCTYPE (so no
entity expansion of any kind: billion laughs, quadratic blow-up, external entities over
file or http), nesting deeper than a limit, malformed or non-UTF-8 text. No network access,
no XInclude, no DTD loading. Tolerates the stray bytes some peers put before ``<?xml``.

It returns an lxml tree and must not interpret edXML: that is the parser's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from connector.errors import PermanentError

_XML_START = re.compile(rb"<[?!A-Za-z_]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENCODING_DECL = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_MAX_STRAY_PREFIX = 64


@dataclass(frozen=True)
class XmlLimits:
    """Limits for untrusted input; big attachments need a generous ``max_bytes``."""

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 40
    max_elements: int = 200_000


DEFAULT_LIMITS = XmlLimits()


class UnsafeXmlError(PermanentError):
    """The bytes are not acceptable XML (malformed, hostile, or over a limit)."""

    def __init__(self, message: str, *, reason: str = "xml_malformed", line: int | None = None):
        super().__init__(message, reason=reason, stage="parse")
        self.line = line


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,  # our own limits below replace libxml2's, so big attachments fit
        remove_blank_text=False,
        collect_ids=False,
    )


def strip_stray_prefix(data: bytes) -> tuple[bytes, int]:
    """Drop a UTF-8 BOM and short garbage before the XML declaration; return (bytes, dropped)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    match = _XML_START.search(data, start, start + _MAX_STRAY_PREFIX + 1)
    if match is None:
        return data[start:], start
    return data[match.start() :], match.start()


def parse_untrusted(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse untrusted bytes into an element tree, or raise ``UnsafeXmlError``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_untrusted takes bytes")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise UnsafeXmlError(
            f"document is {len(data)} bytes, over the limit of {limits.max_bytes} bytes",
            reason="xml_too_large",
        )
    if not data.strip():
        raise UnsafeXmlError("document is empty", reason="xml_malformed")
    body, _ = strip_stray_prefix(data)
    head = body[:4096]
    doctype = _DOCTYPE.search(head) or _DOCTYPE.search(body)
    if doctype is not None:
        line = body.count(b"\n", 0, doctype.start()) + 1
        raise UnsafeXmlError(
            f"line {line}: a DOCTYPE declaration is not allowed (entity expansion and external "
            "references are refused)",
            reason="xml_doctype_forbidden",
            line=line,
        )
    declared = _ENCODING_DECL.match(head)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise UnsafeXmlError(
            f"declared encoding {declared.group(1).decode('ascii')!r} is not UTF-8; edXML is UTF-8",
            reason="xml_encoding",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise UnsafeXmlError(
            f"line {line}: bytes are not valid UTF-8 at offset {exc.start}",
            reason="xml_encoding",
            line=line,
        ) from None
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        error_line: int | None = exc.lineno if isinstance(exc.lineno, int) else None
        where = f"line {error_line}: " if error_line else ""
        if "Excessive depth" in str(exc.msg):
            raise UnsafeXmlError(
                f"{where}nesting deeper than {limits.max_depth} levels",
                reason="xml_too_deep",
                line=error_line,
            ) from None
        if "Namespace prefix" in str(exc.msg) or "xmlns" in str(exc.msg):
            raise UnsafeXmlError(
                f"{where}not namespace-well-formed XML: {exc.msg}",
                reason="xml_namespace",
                line=error_line,
            ) from None
        raise UnsafeXmlError(
            f"{where}not well-formed XML: {exc.msg}", reason="xml_malformed", line=error_line
        ) from None
    _check_shape(root, limits)
    return root


def _check_shape(root: etree._Element, limits: XmlLimits) -> None:
    count = 0
    depth = 0
    for action, element in etree.iterwalk(root, events=("start", "end")):
        if action == "end":
            depth -= 1
            continue
        depth += 1
        count += 1
        if count > limits.max_elements:
            raise UnsafeXmlError(
                f"document has more than {limits.max_elements} elements", reason="xml_too_large"
            )
        if depth > limits.max_depth:
            raise UnsafeXmlError(
                f"line {element.sourceline}: nesting deeper than {limits.max_depth} levels",
                reason="xml_too_deep",
                line=element.sourceline,
            )
        if isinstance(element, etree._Entity):
            raise UnsafeXmlError(
                f"line {element.sourceline}: entity references are not allowed",
                reason="xml_doctype_forbidden",
                line=element.sourceline,
            )
