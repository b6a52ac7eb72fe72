"""Attachments of an edoc package: manifest references joined with their base64 payloads.

Matches ``ContentId`` with or without ``cid:``, accepts payload elements with or without the
namespace, decodes base64 and unwraps the national axis' single-entry zips within the
configured limits. Problems are collected on the ``Reader``. It must not read the header.
"""

from __future__ import annotations

import io
import zipfile

from lxml.etree import _Element

from connector.edxml import attachments as att
from connector.edxml.model import NS, Attachment
from connector.edxml.reader import Reader


def strip_cid(value: str) -> str:
    value = value.strip()
    return value[4:] if value.lower().startswith("cid:") else value


def read_attachments(
    reader: Reader, root: _Element, limits: att.AttachmentLimits
) -> tuple[Attachment, ...]:
    manifest = reader.child(
        reader.child(reader.child(root, "edXMLEnvelope"), "edXMLBody"), "edXMLManifest"
    )
    references = {}
    for ref in reader.children(manifest, "Reference"):
        cid = reader.text(ref, "ContentId", required=True)
        if cid:
            references[strip_cid(cid)] = ref
    # Payload elements are un-prefixed children of the default QCVN namespace, but some
    # peers send them un-namespaced: accept both (never a foreign namespace, which the receive
    # level reports as ignored: an attachment cannot be slipped in under another one).
    encoded = [c for c in root if _is(c, "AttachmentEncoded")]
    result: list[Attachment] = []
    seen: set[str] = set()
    for container in encoded:
        for element in container:
            if not _is(element, "Attachment"):
                continue
            item = _attachment(reader, element, references, limits)
            if item is not None:
                if item.content_id in seen:
                    reader.problem(
                        element,
                        f"ContentId cid:{item.content_id} appears twice",
                        name="ContentId",
                        reason="duplicate_content_id",
                    )
                seen.add(item.content_id)
                result.append(item)
    for cid, ref in references.items():
        if cid not in seen:
            reader.problem(
                ref,
                f"manifest Reference cid:{cid} has no Attachment payload",
                name="ContentId",
                reason="missing_attachment",
            )
    return tuple(result)


def _is(element: _Element, name: str) -> bool:
    """``element`` is ``name`` in the QCVN namespace or in none."""
    return element.tag in (f"{{{NS}}}{name}", name)


def _local_text(element: _Element, name: str) -> str | None:
    for child in element:
        if _is(child, name):
            value = (child.text or "").strip()
            return value or None
    return None


def _attachment(
    reader: Reader,
    element: _Element,
    references: dict[str, _Element],
    limits: att.AttachmentLimits,
) -> Attachment | None:
    cid_text = _local_text(element, "ContentId")
    if not cid_text:
        reader.problem(
            element, "Attachment has no ContentId", name="ContentId", reason="missing_field"
        )
        return None
    cid = strip_cid(cid_text)
    ref = references.get(cid)
    name = (
        _local_text(element, "AttachmentName")
        or (reader.text(ref, "AttachmentName") if ref is not None else None)
        or f"cid-{cid}"
    )
    payload_text = None
    for child in element:
        if _is(child, "ContentTransferEncoded"):
            payload_text = child.text or ""
    if payload_text is None:
        reader.problem(
            element,
            f"attachment {name!r} has no ContentTransferEncoded payload",
            name="ContentTransferEncoded",
            reason="missing_field",
        )
        return None
    try:
        data = att.decode_base64(payload_text, name=name, limits=limits)
        wire_type = _local_text(element, "ContentType") or ""
        manifest_type = (reader.text(ref, "ContentType") if ref is not None else None) or wire_type
        content_type = manifest_type or att.guess_content_type(name)
        if att.is_zip(data):
            unzipped = _unzip_declared(data, name, limits, (wire_type, manifest_type))
            if unzipped is not None:
                data = unzipped[1]
                if content_type == att.ZIP_CONTENT_TYPE:
                    content_type = att.guess_content_type(name)
    except att.AttachmentError as exc:
        reader.problem(element, exc.message, name="ContentTransferEncoded", reason=exc.reason)
        return None
    description = (reader.text(ref, "Description") if ref is not None else None) or _local_text(
        element, "Description"
    )
    return Attachment(
        content_id=cid, name=name, content_type=content_type, data=data, description=description
    )


def _unzip_declared(
    data: bytes, name: str, limits: att.AttachmentLimits, declared: tuple[str, str]
) -> tuple[str, bytes] | None:
    """The single entry of a zip payload. Bytes that only begin like a zip (no zip directory)
    are a zip's problem only when a zip was declared; otherwise they stay as they are, for the
    content checks to judge against the declared type."""
    if att.ZIP_CONTENT_TYPE not in declared and not zipfile.is_zipfile(io.BytesIO(data)):
        return None
    return att.unzip_single(data, name=name, limits=limits)
