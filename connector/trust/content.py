"""What a received attachment really is, and the PDF rules (R3, R4) applied to each one.

* The main document is the one the manifest names first (what the mapping hands to the local
  side as ``main_document``), wherever its payload sits among the ``Attachment`` elements.
* Declared type against content, as strict as on sending: a file declared (or named) PDF
  must be a PDF, one declared zip must be a zip; an executable (PE, ELF, Mach-O, a ``#!``
  script) is refused whatever it is declared as.
* The main document must be a PDF carrying a valid personal signature and a valid seal
  (R3); every other PDF — recognised by its content, whatever its declared type — must carry
  a valid seal (R4); every signature present must be valid.
* A zip that stays a zip (several entries) is looked into: every entry is held to the same
  rules (an executable refused, a PDF held to R4 and its seals judged like the others'),
  within the bounds of :mod:`connector.trust.zip_entries` (entries, size, nesting).

:func:`check_attachments` is a plain function over bytes (worker-pool friendly) returning a
picklable report; it decides nothing about the sender (that is :mod:`connector.trust.origin`)
and must not read configuration.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from connector.edxml.model import NS, Attachment
from connector.errors import PermanentError
from connector.printable import printable
from connector.trust.binding import SignerFacts
from connector.trust.pdf_policy import PdfPolicy, Role, check_inbound, is_pdf
from connector.trust.truststore import SignerKind, TrustStore
from connector.trust.zip_entries import DEFAULT_ZIP_LIMITS, is_zip, read_entries, shown

_CN = re.compile(r"(?:^|,)CN=((?:\\,|[^,])+)")
PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"
_EXECUTABLE_MAGIC = (
    (b"MZ", "a Windows executable"),
    (b"\x7fELF", "an ELF executable"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal executable"),
    (b"#!", "a script"),
)
_PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


@dataclass(frozen=True)
class AttachmentCheck:
    """One attachment: its role, the seals found on it, and its first failure (if any)."""

    content_id: str
    name: str
    role: str  # "main", "attachment" or "other" (not a PDF)
    note: str
    seals: tuple[SignerFacts, ...] = ()
    signers: tuple[str, ...] = ()  # "personal: CN" / "organisation: CN"
    reason: str | None = None  # stable code of the first failure
    problem: str | None = None
    seal_digests: tuple[str, ...] = ()  # signed digests of the valid seals (replay index)


@dataclass(frozen=True)
class AttachmentChecks:
    """Every attachment of one package, the main document first."""

    items: tuple[AttachmentCheck, ...]

    @property
    def main(self) -> AttachmentCheck | None:
        return next((i for i in self.items if i.role == "main"), None)

    @property
    def failures(self) -> tuple[AttachmentCheck, ...]:
        return tuple(i for i in self.items if i.reason is not None)

    @property
    def notes(self) -> list[str]:
        return [i.note for i in self.items]


def main_content_id(package_bytes: bytes) -> str | None:
    """The ContentId (without ``cid:``) of the first manifest Reference, or None."""
    tags = (f"{{{NS}}}Reference", f"{{{NS}}}edXMLBody")
    context = etree.iterparse(
        io.BytesIO(package_bytes), events=("end",), tag=tags, resolve_entities=False,
        no_network=True, load_dtd=False, huge_tree=True,
    )
    try:
        for _, element in context:
            if element.tag == tags[1]:
                return None
            if not _in_manifest(element):  # a Reference elsewhere names nothing
                continue
            found = element.find(f"{{{NS}}}ContentId")
            text = (found.text or "").strip() if found is not None else ""
            if text:
                return text[4:] if text.lower().startswith("cid:") else text
    except etree.XMLSyntaxError:
        return None
    return None


_MANIFEST_PATH = tuple(f"{{{NS}}}{name}" for name in
                       ("edXMLManifest", "edXMLBody", "edXMLEnvelope", "edXML"))


def _in_manifest(reference: etree._Element) -> bool:
    """Whether the Reference sits where the parser reads it: edXML/edXMLEnvelope/edXMLBody/
    edXMLManifest (a Reference in the header or the body names no attachment)."""
    node = reference.getparent()
    for tag in _MANIFEST_PATH:
        if node is None or node.tag != tag:
            return False
        node = node.getparent()
    return node is None


def main_first(
    attachments: Sequence[Attachment], main_id: str | None
) -> tuple[Attachment, ...]:
    """The attachments with the manifest's main document first (order otherwise kept)."""
    items = tuple(attachments)
    for index, item in enumerate(items):
        if item.content_id == main_id:
            return (item, *items[:index], *items[index + 1:])
    return items


def content_problem(item: Attachment) -> tuple[str, str] | None:
    """``(reason, message)`` when the bytes are not what the attachment declares."""
    data, declared = item.data, item.content_type.split(";")[0].strip().lower()
    for magic, what in _EXECUTABLE_MAGIC:
        if data.startswith(magic):
            return "executable_content", (
                f"attachment {item.content_id}: the content is {what} (declared {declared or '?'})"
            )
    named_pdf = item.name.lower().endswith(".pdf")
    if (declared in _PDF_TYPES or named_pdf) and not is_pdf(data):
        return "content_type_mismatch", (
            f"attachment {item.content_id}: declared or named as a PDF but the content is not a "
            "PDF")
    if declared in _ZIP_TYPES and not data.startswith(ZIP_MAGIC):
        return "content_type_mismatch", (
            f"attachment {item.content_id}: declared as a zip archive but the content is not one")
    return None


def _check_one(item: Attachment, role: Role | None, trust: TrustStore, policy: PdfPolicy,
               depth: int = 0) -> AttachmentCheck:
    cid = item.content_id
    problem = content_problem(item)
    if problem is not None:
        return AttachmentCheck(cid, item.name, role or "other", f"{cid}: {problem[1]}",
                               reason=problem[0], problem=problem[1])
    if role is None and is_zip(item.data):
        return _check_zip(item, trust, policy, depth + 1)
    if role is None:
        return AttachmentCheck(cid, item.name, "other",
                               f"{cid}: not a PDF, no PDF signature checked")
    try:
        report = check_inbound(item.data, role, trust, policy, name=f"attachment {cid}")
    except PermanentError as exc:
        return AttachmentCheck(cid, item.name, str(role), f"{cid}: {exc.message}",
                               reason=exc.reason, problem=exc.message)
    except MemoryError:  # our side's shortage, not the file's fault
        raise
    except Exception as exc:
        # pyHanko/asn1crypto raise AttributeError, ValueError ... on some damaged signature
        # blobs: that is this file's failure, refused with a reason, never a retried package.
        message = (f"attachment {cid}: the PDF and its signatures could not be checked "
                   f"({type(exc).__name__}: {printable(str(exc), 200)})")
        return AttachmentCheck(cid, item.name, str(role), f"{cid}: {message}",
                               reason="pdf_unreadable", problem=message)
    valid_seals = report.valid_of(SignerKind.ORGANISATION)
    seals = tuple(s.facts for s in valid_seals if s.facts)
    digests = tuple(s.signed_digest for s in valid_seals if s.signed_digest)
    signers = tuple(f"{s.kind}: {_common_name(s.signer)}" for s in report.signatures)
    return AttachmentCheck(
        cid, item.name, str(role),
        f"{item.name}: {len(report.signatures)} valid signature(s) ({', '.join(signers)}) "
        f"as {role}", seals, signers, seal_digests=digests,
    )


def _check_zip(item: Attachment, trust: TrustStore, policy: PdfPolicy, depth: int
               ) -> AttachmentCheck:
    """Every entry of a zip attachment held to the rules of a separate attachment; the first
    failing entry fails the attachment; the seals found inside count as the attachment's."""
    cid, what = item.content_id, f"attachment {item.content_id}"
    if depth > DEFAULT_ZIP_LIMITS.depth:
        message = (f"{what}: archives nested deeper than {DEFAULT_ZIP_LIMITS.depth} levels "
                   "cannot be checked")
        return AttachmentCheck(cid, item.name, "other", f"{cid}: {message}",
                               reason="attachment_zip_nested", problem=message)
    try:
        entries = read_entries(item.data, what=what)
    except PermanentError as exc:
        return AttachmentCheck(cid, item.name, "other", f"{cid}: {exc.message}",
                               reason=exc.reason, problem=exc.message)
    seals: list[SignerFacts] = []
    digests: list[str] = []
    signers: list[str] = []
    for name, data in entries:
        entry = Attachment(f"{cid}, entry '{shown(name)}'", name, "", data)
        found = _check_one(entry, Role.ATTACHMENT if is_pdf(data) else None, trust, policy,
                           depth)
        if found.reason is not None:
            return AttachmentCheck(cid, item.name, "other", found.note, reason=found.reason,
                                   problem=found.problem)
        seals.extend(found.seals)
        digests.extend(found.seal_digests)
        signers.extend(found.signers)
    return AttachmentCheck(
        cid, item.name, "other", f"{cid}: a zip of {len(entries)} file(s), each checked",
        tuple(seals), tuple(signers), seal_digests=tuple(digests),
    )


def _common_name(subject: str) -> str:
    found = _CN.search(subject)
    return found.group(1).replace("\\,", ",") if found else subject


def check_attachments(
    attachments: Sequence[Attachment], main_id: str | None, trust: TrustStore,
    policy: PdfPolicy,
) -> AttachmentChecks:
    """Content and PDF checks of every attachment (see the module docstring); never raises
    for a bad attachment: each one's failure is in its :class:`AttachmentCheck`."""
    ordered = main_first(attachments, main_id)
    items: list[AttachmentCheck] = []
    for index, item in enumerate(ordered):
        pdf = is_pdf(item.data)
        if index == 0:
            if not pdf and content_problem(item) is None:
                items.append(AttachmentCheck(
                    item.content_id, item.name, "main",
                    f"{item.content_id}: the main document is not a PDF",
                    reason="main_document_not_pdf",
                    problem=f"the main document (attachment {item.content_id}) is not a PDF; "
                            "it must be a PDF carrying the signer's and the organisation's "
                            "signatures"))
                continue
            items.append(_check_one(item, Role.MAIN, trust, policy))
        else:
            items.append(_check_one(item, Role.ATTACHMENT if pdf else None, trust, policy))
    return AttachmentChecks(tuple(items))
