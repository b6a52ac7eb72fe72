"""Validation against our XSDs (schemas/edoc.xsd, schemas/status.xsd) with lxml.

Two entry points:

* ``validate_package(data)``: the strict check of bytes exactly as they are; used on what we
  emit. Schemas are compiled once per thread (lxml schema objects are not shared across
  threads).
* ``check_package(data)``: the check for what peers send: parse tolerantly, normalise (re-emit
  in the strict shape) and validate that, reporting problems at the line and path of the
  original input. Deviations that the normalisation absorbed are returned as notes.

Problems are ``Problem`` objects (line, path, element, message). This module must not
change a package's meaning.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from connector.edxml.builder import build_package
from connector.edxml.model import NS, Package
from connector.edxml.parser import parse_element
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.xmlsafe import (
    DEFAULT_LIMITS,
    UnsafeXmlError,
    XmlLimits,
    parse_untrusted,
    strip_stray_prefix,
)

_local = threading.local()
_NS_BRACED = "{" + NS + "}"
_PATH_STEP = re.compile(r"^(?:[A-Za-z0-9_]+:)?([A-Za-z0-9_]+)(?:\[(\d+)\])?$")


def schema_dir() -> Path:
    override = os.environ.get("CONNECTOR_SCHEMAS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "schemas"


def _schema(kind: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = {}
        _local.schemas = cache
    schema = cache.get(kind)
    if schema is None:
        path = schema_dir() / f"{kind}.xsd"
        schema = etree.XMLSchema(etree.parse(str(path)))
        cache[kind] = schema
    return schema


def _kind(root: etree._Element) -> str:
    status = root.find(f".//{_NS_BRACED}MessageHeader/{_NS_BRACED}StatusCode")
    return "status" if status is not None else "edoc"


def _readable(message: str) -> str:
    return message.replace(_NS_BRACED, "edXML:")


def _readable_path(path: str | None) -> str:
    if not path:
        return ""
    steps = []
    for step in path.strip("/").split("/"):
        if step == "*":
            steps.append("edXML")
            continue
        match = _PATH_STEP.match(step)
        steps.append(
            f"{match.group(1)}[{match.group(2)}]"
            if match and match.group(2)
            else (match.group(1) if match else step)
        )
    return "/" + "/".join(steps)


def validate_element(root: etree._Element) -> list[Problem]:
    schema = _schema(_kind(root))
    if schema.validate(root):
        return []
    problems = []
    for entry in schema.error_log:
        path = _readable_path(entry.path)
        element = path.rsplit("/", 1)[-1].split("[")[0] if path else None
        problems.append(
            Problem(
                _readable(entry.message),
                path=path,
                line=entry.line,
                element=element,
                reason="schema",
            )
        )
    return problems


def validate_package(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> list[Problem]:
    """Strict XSD check of the bytes as they are. Empty list = valid."""
    try:
        root = parse_untrusted(data, limits)
    except UnsafeXmlError as exc:
        return [Problem(exc.message, line=exc.line, reason=exc.reason)]
    return validate_element(root)


@dataclass
class CheckResult:
    """Outcome of checking a received package."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    package: Package | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.package is not None


def check_package(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> CheckResult:
    """Tolerant parse + strict validation of the normalised form, located in the input."""
    result = CheckResult()
    try:
        root = parse_untrusted(data, limits)
    except UnsafeXmlError as exc:
        result.problems.append(Problem(exc.message, line=exc.line, reason=exc.reason))
        return result
    try:
        package = parse_element(root)
    except EdxmlError as exc:
        result.problems.extend(exc.problems)
        return result
    result.package = package
    _, stray = strip_stray_prefix(bytes(data))
    if stray:
        result.notes.append(f"{stray} stray byte(s) before the XML declaration were ignored")
    strict = validate_element(root)
    if not strict:
        return result
    normalised = parse_untrusted(build_package(package), limits)
    for problem in validate_element(normalised):
        source = _locate(root, problem.path)
        result.problems.append(
            Problem(
                problem.message,
                path=problem.path,
                line=source.sourceline if source is not None else None,
                element=problem.element,
                reason=problem.reason,
            )
        )
    if not result.problems:
        result.notes.append(
            f"not in the strict wire shape ({len(strict)} schema deviation(s), e.g. "
            f"{strict[0]}); accepted after normalisation"
        )
    return result


def _locate(root: etree._Element, path: str) -> etree._Element | None:
    """Find the input element at a normalised path (same names, same sibling index)."""
    from connector.edxml.reader import ALIASES

    node: etree._Element | None = root
    for step in path.strip("/").split("/")[1:]:
        if node is None:
            return None
        match = _PATH_STEP.match(step)
        if not match:
            return None
        name, index = match.group(1), int(match.group(2) or 1)
        names = ALIASES.get(name, (name,))
        same = [c for c in node if isinstance(c.tag, str) and etree.QName(c).localname in names]
        node = same[index - 1] if len(same) >= index else None
    return node
