"""``connector validate --strict``: every departure of a file from the standard, at once.

The bytes as they are must be the strict wire shape our XSDs describe (the emit level):
nothing before the XML declaration, then the schema of the package's kind. xmlschema's
``iter_errors`` lists every problem of a file (lxml stops inside an element at its first
content error); it is an operator's tool, not on the daemon's path. Input is parsed with
the hardened ``parse_untrusted`` first. This module must not refuse or accept packages for
the daemon.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import xmlschema
from lxml import etree

from connector.edxml.conformance import deviations
from connector.edxml.model import NS
from connector.edxml.problems import Problem
from connector.edxml.schema import schema_dir
from connector.edxml.xmlsafe import (
    UnsafeXmlError,
    encoding_note,
    parse_untrusted,
    strip_stray_prefix,
)

_NS_BRACED = "{" + NS + "}"
_PREFIXED_STEP = re.compile(r"\{[^}]*\}|[A-Za-z_][\w.-]*:")


@functools.cache
def _schema(kind: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(schema_dir() / f"{kind}.xsd"))


def strict_problems(data: bytes) -> list[Problem]:
    """Every problem of ``data`` against the strict schema (empty: it is in the wire shape)."""
    try:
        root = parse_untrusted(data)
    except UnsafeXmlError as exc:
        message = re.sub(r"^line \d+: ", "", exc.message) if exc.line else exc.message
        return [Problem(message, line=exc.line, reason=exc.reason)]
    problems: list[Problem] = []
    note = encoding_note(bytes(data))
    if note is not None:  # the emit level is UTF-8
        problems.append(Problem(note.split(":")[0] + ": QCVN 102 packages are UTF-8", line=1,
                                reason="schema"))
    _, stray = strip_stray_prefix(bytes(data)) if note is None else (b"", 0)
    if stray and not bytes(data).startswith(b"\xef\xbb\xbf<"):
        problems.append(
            Problem(f"{stray} byte(s) before the XML declaration", line=1, reason="schema")
        )
    status = root.find(f"{_NS_BRACED}edXMLEnvelope/{_NS_BRACED}edXMLHeader/"
                       f"{_NS_BRACED}MessageHeader/{_NS_BRACED}StatusCode")
    schema = _schema("status" if status is not None else "edoc")
    for error in schema.iter_errors(etree.ElementTree(root)):
        elem = error.elem
        element = etree.QName(elem).localname if elem is not None and isinstance(
            getattr(elem, "tag", None), str) else None
        path = _PREFIXED_STEP.sub("", error.path or "")
        line = getattr(elem, "sourceline", None) if elem is not None else None
        reason = error.reason or str(error.message)
        problems.append(
            Problem(reason.replace(_NS_BRACED, "edXML:"), path=path, line=line,
                    element=element, reason="schema")
        )
    # xmlschema stops reading an element's children at its first content-model error: the
    # receive level's structural pass names every misplaced, missing, repeated or unknown
    # child, so a file's problems are all listed at once.
    named = {(p.line, p.element) for p in problems}
    for warning in deviations(root, "status" if status is not None else "edoc"):
        if (warning.line, warning.element) not in named:
            named.add((warning.line, warning.element))
            problems.append(dataclasses.replace(warning, reason="schema"))
    return problems
