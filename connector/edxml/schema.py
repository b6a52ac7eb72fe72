"""Validation against our XSDs (schemas/edoc.xsd, schemas/status.xsd) with lxml.

Two entry points:

* ``validate_package(data)``: the strict check of bytes exactly as they are; used on what we
  emit. Schemas are compiled once per thread (lxml schema objects are not shared across
  threads).
* ``check_package(data)``: the receive level (``connector.edxml.conformance``): refused only
  for what receiving needs, every other departure from QCVN 102 returned as a warning at the
  line and path of the input.

Problems are ``Problem`` objects (line, path, element, message). This module must not
change a package's meaning.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from connector.edxml.model import NS, Package
from connector.edxml.parser import parse_element
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.xmlsafe import (
    DEFAULT_LIMITS,
    UnsafeXmlError,
    XmlLimits,
    encoding_note,
    parse_untrusted,
    strip_stray_prefix,
)

_local = threading.local()
_NS_BRACED = "{" + NS + "}"
_PATH_STEP = re.compile(r"^(?:[A-Za-z0-9_]+:)?([A-Za-z0-9_]+)(?:\[(\d+)\])?$")


def schema_dir() -> Path:
    """The XSD folder: an operator's ``CONNECTOR_SCHEMAS``, else the installed package's own."""
    override = os.environ.get("CONNECTOR_SCHEMAS")
    if override:
        return Path(override)
    from connector.resources import packaged_schemas_dir

    return packaged_schemas_dir()


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


def readable_path(path: str | None) -> str:
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
        path = readable_path(entry.path)
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
    """Outcome of checking a received package at the receive level.

    ``problems`` refuse it (receiving needs what they name); ``warnings`` are its departures
    from QCVN 102, kept with it (also on ``package.deviations``).
    """

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    package: Package | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.package is not None

    @property
    def notes(self) -> list[str]:
        """Nothing: departures are ``warnings`` now, carried on the package (kept so callers
        that added notes to the verification event still work)."""
        return []


def check_package(data: bytes, limits: XmlLimits = DEFAULT_LIMITS) -> CheckResult:
    """Receive level: refused only for what receiving needs; everything else a warning."""
    from connector.edxml.conformance import deviations

    result = CheckResult()
    try:
        root = parse_untrusted(data, limits)
    except UnsafeXmlError as exc:
        message = re.sub(r"^line \d+: ", "", exc.message) if exc.line else exc.message
        result.problems.append(Problem(message, line=exc.line, reason=exc.reason))
        return result
    try:
        package = parse_element(root)
    except EdxmlError as exc:
        result.problems.extend(exc.problems)
        return result
    note = encoding_note(bytes(data))
    if note is not None:
        result.warnings.append(Problem(note, line=1, reason="deviation"))
    _, stray = strip_stray_prefix(bytes(data)) if note is None else (b"", 0)
    if stray and not bytes(data).startswith(b"\xef\xbb\xbf" + b"<"):
        result.warnings.append(
            Problem(
                f"{stray} byte(s) before the XML declaration ignored",
                line=1,
                reason="deviation",
            )
        )
    result.warnings.extend(package.deviations)
    seen = {(w.path, w.message) for w in result.warnings}
    for warning in deviations(root, package.kind):
        if (warning.path, warning.message) not in seen:
            seen.add((warning.path, warning.message))
            result.warnings.append(warning)
    result.package = dataclasses.replace(package, deviations=tuple(result.warnings))
    return result
