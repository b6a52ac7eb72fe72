"""Where a value lives in a local record: JSON paths and a writable XPath subset.

JSON records: a dotted path (``so_ky_hieu.so``) or a JSON pointer (``/so_ky_hieu/so``, with
``~0``/``~1`` escapes); a numeric segment indexes a list. XML records: a relative location
path of child steps from the record's root element, optionally ending in an attribute
(``NoiNhan/DonVi/@Ma``), with namespace prefixes declared in the mapping; ``.`` is the
context element itself. Predicates, axes and functions are refused on purpose: the same
path is *written* by the reverse direction, so it must name exactly one place.

XML records are parsed with a hardened lxml parser (no DTD, no entities, no network, no
huge trees). This module reads and writes values; it must not know what they mean.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from connector.errors import PermanentError

MAX_RECORD_BYTES = 8 * 1024 * 1024  # a record without inline attachments is a few kB

_NAME = r"[^\W\d][\w.\-]*"
_XML_STEP = re.compile(rf"^(?P<attr>@)?(?:(?P<prefix>{_NAME}):)?(?P<local>{_NAME})$")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


class PathSyntaxError(ValueError):
    """The path is not in the accepted syntax; the message says why and what is accepted."""


class _Missing:
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


# ----------------------------------------------------------------------------- JSON
@dataclass(frozen=True)
class JsonPath:
    text: str
    parts: tuple[str, ...]

    def get(self, data: Any) -> Any:
        current = data
        for part in self.parts:
            if isinstance(current, Mapping):
                if part not in current:
                    return MISSING
                current = current[part]
            elif isinstance(current, list) and part.isdigit():
                index = int(part)
                if index >= len(current):
                    return MISSING
                current = current[index]
            else:
                return MISSING
        return current

    def set(self, data: dict[str, Any], value: Any) -> None:
        current: Any = data
        for part in self.parts[:-1]:
            nxt = current.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                current[part] = nxt
            current = nxt
        current[self.parts[-1]] = value


def parse_json_path(text: str) -> JsonPath:
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("the path is empty")
    if text != text.strip():
        raise PathSyntaxError("the path has leading or trailing spaces")
    if text.startswith("/"):
        raw = text[1:].split("/")
        parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in raw)
        if any(p == "" for p in parts):
            raise PathSyntaxError("a JSON pointer has an empty segment ('//' or a trailing '/')")
    else:
        if "/" in text or "[" in text:
            raise PathSyntaxError(
                "a dotted path may not contain '/' or '[' (use 'a.b.0.c', or a JSON pointer "
                "'/a/b/0/c')"
            )
        parts = tuple(text.split("."))
        if any(p == "" for p in parts):
            raise PathSyntaxError("a dotted path has an empty segment ('..' or a leading/"
                                  "trailing '.')")
    return JsonPath(text, parts)


# ----------------------------------------------------------------------------- XML
@dataclass(frozen=True)
class XmlStep:
    namespace: str | None
    local: str
    attribute: bool

    @property
    def tag(self) -> str:
        return f"{{{self.namespace}}}{self.local}" if self.namespace else self.local


@dataclass(frozen=True)
class XmlPath:
    text: str
    steps: tuple[XmlStep, ...]  # empty: the context element itself

    def nodes(self, context: etree._Element) -> list[etree._Element | str]:
        current: list[etree._Element] = [context]
        for step in self.steps:
            if step.attribute:
                values = [el.get(step.tag) for el in current]
                return [v for v in values if v is not None]
            current = [child for el in current for child in el if child.tag == step.tag]
        return list(current)

    def get_all(self, context: etree._Element) -> list[Any]:
        """Text of every matching element or attribute (elements with children as elements)."""
        return [n if isinstance(n, str) else _text_or_element(n) for n in self.nodes(context)]

    def elements(self, context: etree._Element) -> list[etree._Element]:
        return [n for n in self.nodes(context) if not isinstance(n, str)]

    def write(self, context: etree._Element, values: list[str] | None,
              many: bool = False) -> list[etree._Element]:
        """Create the path under ``context`` and write ``values`` there.

        Container steps are shared; the last element step is created once per value when
        ``many``, else reused if present (so ``A/@x`` and ``A`` write one ``A``). ``values``
        None creates a new last element per call and returns it (for group items).
        """
        element_steps = [s for s in self.steps if not s.attribute]
        attribute = self.steps[-1] if self.steps and self.steps[-1].attribute else None
        parent = context
        for step in element_steps[:-1] if not attribute else element_steps:
            existing = [c for c in parent if c.tag == step.tag]
            parent = existing[0] if existing else etree.SubElement(parent, step.tag)
        if attribute is not None:
            if values:
                parent.set(attribute.tag, values[0])
            return [parent]
        if not element_steps:
            if values:
                context.text = values[0]
            return [context]
        last = element_steps[-1]
        if values is None:
            return [etree.SubElement(parent, last.tag)]
        if not many and values:
            existing = [c for c in parent if c.tag == last.tag]
            element = existing[0] if existing else etree.SubElement(parent, last.tag)
            element.text = values[0]
            return [element]
        created = []
        for value in values:
            element = etree.SubElement(parent, last.tag)
            element.text = value
            created.append(element)
        return created


def _text_or_element(element: etree._Element) -> Any:
    if len(element):
        return element
    return element.text or ""


def parse_xml_path(text: str, namespaces: Mapping[str, str]) -> XmlPath:
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("the path is empty")
    if text != text.strip():
        raise PathSyntaxError("the path has leading or trailing spaces")
    if text == ".":
        return XmlPath(text, ())
    if text.startswith("/"):
        raise PathSyntaxError(
            "XML paths are relative to the record's root element: write 'A/B', not '/Root/A/B' "
            "or '//B'"
        )
    raw_steps = text.split("/")
    steps: list[XmlStep] = []
    for i, raw in enumerate(raw_steps):
        match = _XML_STEP.match(raw)
        if match is None:
            raise PathSyntaxError(
                f"step {raw!r} is not a plain element or attribute name (predicates, axes, "
                "functions, '//' and '*' are not accepted: the reverse direction writes the path)"
            )
        attribute = match.group("attr") is not None
        if attribute and i != len(raw_steps) - 1:
            raise PathSyntaxError(f"attribute step {raw!r} must be the last step")
        prefix = match.group("prefix")
        namespace = None
        if prefix is not None:
            if prefix not in namespaces:
                raise PathSyntaxError(
                    f"namespace prefix {prefix!r} is not declared in record.namespaces"
                )
            namespace = namespaces[prefix]
        elif not attribute:
            namespace = namespaces.get("", None)
        steps.append(XmlStep(namespace, match.group("local"), attribute))
    return XmlPath(text, tuple(steps))


class RecordSyntaxError(PermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(message, reason="record_malformed", stage="mapping")


def parse_xml_record(data: bytes, limit: int = MAX_RECORD_BYTES) -> etree._Element:
    """Parse a local XML record with a hardened parser, or raise RecordSyntaxError.

    Without ``huge_tree`` libxml2 itself bounds one text node (10 MB) and the depth (256)."""
    if len(data) > limit:
        raise RecordSyntaxError(
            f"the XML record is {len(data)} bytes, over the {limit}-byte limit for "
            "records (put big files in the attachment spool and reference them)"
        )
    if _DOCTYPE.search(data):
        raise RecordSyntaxError("the XML record has a DOCTYPE/ENTITY declaration; refused "
                                "(entity expansion and external references are not allowed)")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise RecordSyntaxError(f"the record is not well-formed XML: {exc}") from None
    return root
