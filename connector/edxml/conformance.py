"""The two conformance levels of edXML, and the receive level's warnings.

* **Emit**: what the connector builds passes our XSDs (schemas/*.xsd) exactly
  (``schema.validate_package``).
* **Receive**: a package is refused only when it lacks what the connector needs to
  authenticate, route, decrypt and map it back: ``RECEIVE_NEEDS`` below, field by field, with
  the reason (the parser enforces it). Every other departure from QCVN 102 is a *warning*
  (``deviations``): unknown or foreign-namespace elements, other spellings, other child
  order, missing or repeated elements, values over a length, outside a pattern, an
  enumeration or a range. Warnings are kept with the package, shown and counted; they never
  refuse it.

``deviations`` works on a copy of the received tree: it renames aliases, drops unknown
elements and puts children in the schema's order (each a warning), then validates values
with lxml, keeping each node's source line. It must not refuse anything and must not touch
the bytes that are kept or verified.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass

from lxml import etree

from connector.edxml.model import NS, XMLDSIG_NS
from connector.edxml.problems import Problem
from connector.edxml.reader import ALIASES, Reader
from connector.edxml.xsdmodel import ElementDecl, declarations


@dataclass(frozen=True)
class Need:
    """One thing receiving cannot do without."""

    kind: str  # edoc, status or both
    field: str
    why: str


RECEIVE_NEEDS: tuple[Need, ...] = (
    Need("both", "well-formed, namespace-well-formed XML within the size and depth limits, "
         "no DOCTYPE, in UTF-8 or in UTF-16, ISO-8859-x or windows-125x (converted to UTF-8 "
         "first, a warning); elements outside the QCVN namespace ignored (payloads without "
         "one are read)", "nothing can be read safely otherwise; a foreign From, To or "
         "DocumentId must not shadow the QCVN one"),
    Need("both", "root edXML in the QCVN namespace, edXMLEnvelope/edXMLHeader/MessageHeader",
         "it is not an edXML package otherwise; every field below lives there"),
    Need("both", "From/OrganId", "the sender: the XML signature's certificate is bound to it "
         "(authentication) and the 01/02 answer is addressed to it (routing)"),
    Need("edoc", "To/OrganId (at least one To that has one)",
         "the recipients: routing on the hub and to this agency"),
    Need("edoc", "DocumentId", "the document's identity: duplicates are recognised by it and "
         "the 01 answer and every later status refer to it"),
    Need("edoc", "Code with CodeNumber or CodeNotation",
         "số/ký hiệu: the answer to the sender names the document by it (ResponseFor/Code)"),
    Need("edoc", "PromulgationInfo/PromulgationDate, or the date of a composite DocumentId",
         "the date the document was issued: the local record and the answer carry it"),
    Need("edoc", "Bussiness/BussinessDocType 0-3 when there is a Bussiness (none: a new document)",
         "whether the package is a new document, a revocation, an update or a replacement: "
         "the local side acts on it, a guess could revoke or duplicate a document"),
    Need("edoc", "Attachment: ContentId, ContentTransferEncoded that decodes (base64, a "
         "single-entry zip) within the limits, ContentIds unique, a payload for every "
         "manifest Reference", "attachments are decrypted, their PDF signatures verified and "
         "handed to the local side: one that cannot be decoded or matched is a damaged package"),
    Need("status", "ResponseFor with DocumentId",
         "the document the status is about: the tracking is updated by it"),
    Need("status", "StatusCode, one of 01-06, 13, 15, 16",
         "what happened to the document: an unknown code cannot be applied to the tracking"),
)

# Elements whose absence or bad value can refuse a package (all others only warn).
NEEDED_ELEMENTS = frozenset({
    "edXML", "edXMLEnvelope", "edXMLHeader", "MessageHeader", "From", "OrganId", "To",
    "DocumentId", "Code", "CodeNumber", "CodeNotation", "PromulgationDate", "BussinessDocType",
    "ResponseFor", "StatusCode", "Attachment", "ContentId", "ContentTransferEncoded",
})

MAX_WARNINGS = 500
MAX_SAME_CHECKED = 1000  # same-named children of one element validated for warnings
MAX_MESSAGE = 400
_CANONICAL = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
_ERROR_ELEMENT = re.compile(r"Element '(?:\{[^}]*\}|[\w.-]+:)?([\w.-]+)'")
_CONTENT_MODEL = ("This element is not expected", "Missing child element")
_NS_BRACED = "{" + NS + "}"
_PAYLOADS = "/edXML/AttachmentEncoded"
_local = threading.local()


def _schema(kind: str) -> etree.XMLSchema:
    cache: dict[str, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    if kind not in cache:
        from connector.edxml.schema import schema_dir

        cache[kind] = etree.XMLSchema(etree.parse(str(schema_dir() / f"{kind}.xsd")))
    return cache[kind]


class _Pass:
    def __init__(self) -> None:
        self.warnings: list[Problem] = []

    def warn(self, node: etree._Element, path: str, name: str, message: str) -> None:
        self.warnings.append(
            Problem(message, path=path, line=node.sourceline, element=name, reason="deviation")
        )

    def element(self, node: etree._Element, decl: ElementDecl, path: str) -> None:
        if decl.skip_content:
            return
        kept: list[etree._Element] = []
        for child in list(node):
            if not isinstance(child.tag, str):
                continue
            keep = self.child(node, child, decl, path)
            if keep is not None:
                kept.append(keep)
        order = {c.name: i for i, c in enumerate(decl.children)}
        wanted = sorted(kept, key=lambda c: order.get(etree.QName(c).localname, len(order)))
        if wanted != kept:
            self.warn(node, path, decl.name,
                      f"the children of {decl.name} are not in QCVN's order (read in any order)")
            for child in wanted:
                node.append(child)  # moves it to the end: the order becomes the wanted one
        for child_decl in decl.children:
            same = [c for c in wanted if etree.QName(c).localname == child_decl.name
                    and etree.QName(c).namespace == NS]
            if len(same) < child_decl.min_occurs:
                self.warn(node, f"{path}/{child_decl.name}", child_decl.name,
                          f"required element {child_decl.name} is missing")
            if child_decl.max_occurs is not None and len(same) > child_decl.max_occurs:
                self.warn(same[child_decl.max_occurs], f"{path}/{child_decl.name}",
                          child_decl.name,
                          f"{child_decl.name} appears {len(same)} times, QCVN allows "
                          f"{child_decl.max_occurs}: the first is read")
                for extra in same[child_decl.max_occurs:]:
                    node.remove(extra)
            for index, child in enumerate(same[: child_decl.max_occurs or None]):
                step = child_decl.name + (f"[{index + 1}]" if len(same) > 1 else "")
                self.element(child, child_decl, f"{path}/{step}")

    def child(self, parent: etree._Element, child: etree._Element, decl: ElementDecl,
              path: str) -> etree._Element | None:
        qname = etree.QName(child)
        local = qname.localname
        if qname.namespace == XMLDSIG_NS and decl.any_namespace == XMLDSIG_NS:
            return child
        payload = path.startswith(_PAYLOADS) or (path == "/edXML" and local == "AttachmentEncoded")
        if qname.namespace is None and payload:
            # The parser reads payloads without a namespace (a peer binding QCVN's to a prefix
            # on the root writes AttachmentEncoded un-prefixed): read as QCVN's.
            self.warn(child, f"{path}/{local}", local,
                      f"element {local} has no namespace (QCVN's is {NS}): read as QCVN's")
            child.tag = _NS_BRACED + _CANONICAL.get(local, local)
            qname = etree.QName(child)
        if qname.namespace != NS:
            # Ignored, as the parser ignores it: a reader that took it for QCVN's would read
            # another From, To or DocumentId than the one authenticated and routed on.
            where = (f"in foreign namespace {qname.namespace}" if qname.namespace
                     else f"without a namespace (QCVN's is {NS})")
            self.warn(child, f"{path}/{local}", local, f"element {local} {where} ignored")
            parent.remove(child)
            return None
        canonical = _CANONICAL.get(local, local)
        if decl.child(canonical) is None:
            self.warn(child, f"{path}/{local}", local,
                      f"unknown element {local} (not in QCVN 102) ignored")
            parent.remove(child)
            return None
        if canonical != local:
            self.warn(child, f"{path}/{local}", local,
                      f"element spelled {local}; QCVN spells it {canonical}")
            child.tag = _NS_BRACED + canonical
        return child


def deviations(root: etree._Element, kind: str) -> list[Problem]:
    """Every departure of a received tree from the strict schema of ``kind``, as warnings
    (at most ``MAX_WARNINGS``, each message at most ``MAX_MESSAGE`` characters)."""
    # Payloads were decoded by the parser already (a bad one refuses the package): the copy
    # leaves them out, so a 50 MB attachment is neither copied nor validated twice.
    # The payloads are emptied in the copy: reading each text out of the received tree and
    # setting it back made a 27 MB str and a second libxml2 copy of it (issue 13.6); the
    # received tree is not touched at all.
    tree = copy.deepcopy(root)
    for node in tree.iter("{*}ContentTransferEncoded"):
        node.text = ""
    check = _Pass()
    check.element(tree, declarations(kind), "/edXML")
    _thin(tree, check)
    schema = _schema(kind)
    if not schema.validate(tree):
        prefixes = _prefixes(tree)
        for entry in schema.error_log:
            if any(marker in entry.message for marker in _CONTENT_MODEL):
                continue  # reported precisely by the structural pass above
            if len(check.warnings) >= MAX_WARNINGS:
                break
            element, path = _where(tree, entry, prefixes)
            message = entry.message.replace(_NS_BRACED, "edXML:")
            if len(message) > MAX_MESSAGE:
                message = message[: MAX_MESSAGE - 1] + "…"
            check.warnings.append(
                Problem(message, path=path, line=entry.line, element=element,
                        reason="deviation"))
    if len(check.warnings) > MAX_WARNINGS:
        more = len(check.warnings) - MAX_WARNINGS
        check.warnings[MAX_WARNINGS:] = [
            Problem(f"... and {more} more departure(s) from QCVN 102", reason="deviation")
        ]
    return check.warnings


def _thin(tree: etree._Element, check: _Pass) -> None:
    """Keep at most ``MAX_SAME_CHECKED`` same-named children of any element in the copy that
    is validated: libxml2 collects its errors in time that grows faster than their number
    (60 000 hub TraceHeaders took two minutes), and no more than ``MAX_WARNINGS`` are kept
    anyway. What the parser reads is the received tree, untouched."""
    for node in tree.iter():
        if len(node) <= MAX_SAME_CHECKED:
            continue
        counts: dict[object, int] = {}
        for child in list(node):
            counts[child.tag] = counts.get(child.tag, 0) + 1
            if counts[child.tag] > MAX_SAME_CHECKED:
                node.remove(child)
        for tag, count in counts.items():
            if count > MAX_SAME_CHECKED and isinstance(tag, str):
                name = etree.QName(tag).localname
                check.warn(node, Reader().path(node), name,
                           f"{count} {name} elements: the first {MAX_SAME_CHECKED} were checked "
                           "against QCVN 102")


def _where(tree: etree._Element, entry: etree._LogEntry,
           prefixes: dict[str, str]) -> tuple[str | None, str]:
    """The element an lxml schema error is about, and its path by local names. lxml's
    ``entry.path`` names the very node (``*[2]`` for default-namespace steps, which XPath
    reads as it is); the element's line alone is ambiguous in a package written on one line."""
    from connector.edxml.schema import readable_path

    match = _ERROR_ELEMENT.match(entry.message)
    name = match.group(1) if match else None
    try:
        found = tree.xpath(entry.path, namespaces=prefixes) if entry.path else []
    except etree.XPathError:
        found = []
    if isinstance(found, list) and len(found) == 1 and isinstance(found[0], etree._Element):
        return name, Reader().path(found[0])
    if name is not None:
        for node in tree.iter(f"{{{NS}}}{name}"):
            if node.sourceline == entry.line:
                return name, Reader().path(node)
    return name, readable_path(entry.path)


def _prefixes(tree: etree._Element) -> dict[str, str]:
    """Every prefix the package binds (the first binding of each), for lxml's error paths."""
    bound: dict[str, str] = {}
    for node in tree.iter():
        for prefix, uri in node.nsmap.items():
            if prefix and prefix not in bound:
                bound[prefix] = uri
    return bound
