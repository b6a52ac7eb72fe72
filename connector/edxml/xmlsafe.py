"""The one entry point for parsing untrusted XML bytes.

Refuses, quickly and with a clear message: documents over a size limit, any DOCTYPE (so no
entity expansion of any kind: billion laughs, quadratic blow-up, external entities over
file or http), nesting deeper than a limit, malformed text, bytes that are not in their declared
encoding. No network access, no XInclude, no DTD loading. Tolerates the stray bytes some peers
put before ``<?xml``, and the encodings other hubs' software declares: UTF-16 (with its byte
order mark), ISO-8859-x and windows-125x are converted to UTF-8 before anything is checked
(so a DOCTYPE cannot hide in them), and UTF-8 bytes labelled UTF-16 (what .NET's StringWriter
writes) are read as UTF-8. ``source_encoding`` names what was converted, for a warning.

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
_UTF16_START = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00?\x00": "utf-16-le",
                b"\x00<\x00?": "utf-16-be"}
# 8-bit encodings a peer may declare (Python's codec for each); anything else is refused.
_EIGHT_BIT = re.compile(
    r"^(?:iso-?8859-(\d{1,2})|latin-?1|(?:windows|cp)-?(125\d)|us-ascii|ascii)$"
)
_DECLARATION_ENCODING = re.compile(r"^(<\?xml[^>]*encoding\s*=\s*)([\"'])[^\"']*\2")
_SIXTEEN_BIT_LABELS = frozenset({"utf-16", "utf16", "utf-16le", "utf-16be", "ucs-2", "unicode"})
_DECLARATION_ENCODING_BYTES = re.compile(_DECLARATION_ENCODING.pattern.encode())


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


def source_encoding(data: bytes) -> str | None:
    """The encoding the document is converted from (a Python codec name), or None when it is
    read as UTF-8 as it is; raises ``UnsafeXmlError`` for an encoding that is not read."""
    for start, codec in _UTF16_START.items():
        if data.startswith(start):
            return codec
    body, _ = strip_stray_prefix(data)
    declared = _ENCODING_DECL.match(body[:4096])
    if declared is None:
        return None
    label = declared.group(1).decode("ascii").lower().replace("_", "-")
    if label in ("utf-8", "utf8") or label in _SIXTEEN_BIT_LABELS:
        return None  # 8-bit bytes labelled UTF-16 can only be UTF-8 (checked below)
    match = _EIGHT_BIT.match(label)
    if match is None:
        raise UnsafeXmlError(
            f"declared encoding {declared.group(1).decode('ascii')!r} is not read (UTF-8, "
            "UTF-16, ISO-8859-x and windows-125x are)",
            reason="xml_encoding",
        )
    if match.group(1):
        return f"iso8859-{match.group(1)}"
    if match.group(2):
        return f"cp{match.group(2)}"
    return "latin-1" if "latin" in label else "ascii"


def encoding_note(data: bytes) -> str | None:
    """A warning for a document that was not plain UTF-8 (None when it was)."""
    codec = source_encoding(data)
    if codec is not None:
        return f"encoding {codec} (QCVN 102 packages are UTF-8): converted to UTF-8"
    declared = _ENCODING_DECL.match(strip_stray_prefix(data)[0][:4096])
    if declared is None or declared.group(1).lower() in (b"utf-8", b"utf8"):
        return None
    label = declared.group(1).decode("ascii")
    return f"encoding declared as {label}, but the bytes are UTF-8: read as UTF-8"


def to_utf8(data: bytes) -> bytes:
    """The document as UTF-8 (stray leading bytes dropped), its declaration saying so."""
    codec = source_encoding(data)
    if codec is None:
        body = strip_stray_prefix(data)[0]
        declared = _ENCODING_DECL.match(body[:4096])
        if declared is None or declared.group(1).lower() in (b"utf-8", b"utf8"):
            return body
        return _DECLARATION_ENCODING_BYTES.sub(rb"\g<1>\g<2>UTF-8\g<2>", body, count=1)
    try:
        text = data.decode(codec)
    except (UnicodeDecodeError, LookupError) as exc:
        where = f" at offset {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        raise UnsafeXmlError(
            f"bytes are not valid {codec}{where}", reason="xml_encoding"
        ) from None
    text = text.removeprefix("\ufeff")
    text = _DECLARATION_ENCODING.sub(r"\g<1>\g<2>UTF-8\g<2>", text, count=1)
    return text.encode("utf-8")


_UTF8_SLICE = 1 << 20


def _check_utf8(body: bytes) -> None:
    """Raise ``UnicodeDecodeError`` (``start`` an offset into ``body``) unless ``body`` is
    UTF-8, without a str of the whole document: decoded in slices cut before a byte that
    is not a continuation byte (10xxxxxx), so no character is split and the first error is
    the one a decode of the whole would report."""
    if body.isascii():
        return
    view = memoryview(body)
    start = 0
    while start < len(body):
        end = min(start + _UTF8_SLICE, len(body))
        while start < end < len(body) and 0x80 <= body[end] < 0xC0:
            end -= 1
        if end == start:  # one lead byte and its continuation bytes fill the slice: take them
            end = start + 1
            while end < len(body) and 0x80 <= body[end] < 0xC0:
                end += 1
        try:
            str(view[start:end], "utf-8")
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(exc.encoding, body, start + exc.start, start + exc.end,
                                     exc.reason) from None
        start = end


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
    if not data or data.isspace():  # not strip(): that copies a 27 MB package
        raise UnsafeXmlError("document is empty", reason="xml_malformed")
    body = to_utf8(data)
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
    try:
        _check_utf8(body)
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
        from connector.printable import printable  # libxml2 quotes the input: escaped

        exc.msg = printable(str(exc.msg), 300)
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
