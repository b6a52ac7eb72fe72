"""How received attachments travel to the local side over AMQP.

A ``LocalDelivery`` is the mapped record plus attachment files. Over a broker they travel
either inline, as one ``multipart/mixed`` MIME body (part 1: the record; then one
base64 part per file, named by ``Content-Disposition: attachment; filename*=``), or, when
a claim-check folder is configured and the files are large, as files written atomically
into ``<claim_check_dir>/<delivery id>/`` and listed in the ``x-attachments`` header.
MIME is parseable with every language's standard library. This module must not touch
the broker.
"""

from __future__ import annotations

import email.policy
import hashlib
import json
import mimetypes
import os
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from connector.local.amqp_settings import H_ATTACHMENTS
from connector.local.filenames import fit_name, fit_names

# SMTP policy: CRLF line ends and 78-column base64 lines, as MIME parsers expect.
_POLICY = email.policy.SMTP
_UNSAFE = re.compile(r"[^\w.\-() ]+", re.UNICODE)


def pack(
    body: bytes,
    content_type: str,
    attachments: Sequence[tuple[str, bytes]],
    *,
    delivery_id: str,
    claim_check_dir: Path | None,
    inline_max_bytes: int,
) -> tuple[bytes, str, dict[str, str]]:
    """(body, content type, extra headers) for a delivery and its attachments."""
    if not attachments:
        return body, content_type, {}
    total = sum(len(data) for _, data in attachments)
    if claim_check_dir is not None and total > inline_max_bytes:
        files = write_claim_checks(claim_check_dir, delivery_id, attachments)
        return body, content_type, {H_ATTACHMENTS: json.dumps(files, ensure_ascii=False)}
    return _multipart(body, content_type, attachments)


def _multipart(
    body: bytes, content_type: str, attachments: Sequence[tuple[str, bytes]]
) -> tuple[bytes, str, dict[str, str]]:
    envelope = EmailMessage(policy=_POLICY)
    envelope.make_mixed()
    maintype, _, subtype = content_type.partition("/")
    record = EmailMessage(policy=_POLICY)
    record.set_content(body, maintype, subtype or "octet-stream", cte="base64",
                       disposition="inline", filename="record")
    envelope.attach(record)
    for name, data in attachments:
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        part_main, _, part_sub = guessed.partition("/")
        part = EmailMessage(policy=_POLICY)
        part.set_content(data, part_main, part_sub, cte="base64",
                         disposition="attachment", filename=name)
        envelope.attach(part)
    raw = envelope.as_bytes()
    # The AMQP content_type property carries the boundary; the body starts at the preamble.
    header_end = raw.index(b"\r\n\r\n") + 4
    return raw[header_end:], str(envelope["Content-Type"]), {}


def unpack(body: bytes, content_type: str) -> tuple[bytes, str, list[tuple[str, bytes]]]:
    """The inverse of the inline form: (record, record content type, attachments)."""
    if not content_type.lower().startswith("multipart/"):
        return body, content_type, []
    message = BytesParser(policy=_POLICY).parsebytes(
        b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts())
    record = parts[0]
    files = [(str(p.get_filename()), bytes(p.get_payload(decode=True))) for p in parts[1:]]
    return bytes(record.get_payload(decode=True)), record.get_content_type(), files


def write_claim_checks(
    root: Path, delivery_id: str, attachments: Sequence[tuple[str, bytes]]
) -> list[dict[str, object]]:
    """Write each file atomically (temp, fsync, rename) under ``root/<delivery id>/``."""
    folder = root / safe_name(delivery_id)
    folder.mkdir(parents=True, exist_ok=True)
    listed: list[dict[str, object]] = []
    names = fit_names([safe_name(name) for name, _ in attachments], fallback="unnamed")
    for (name, data), file_name in zip(attachments, names, strict=True):
        target = folder / file_name
        temp = target.with_name(f".{target.name}.part")
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        listed.append({
            "name": name,
            "path": str(target),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return listed


def safe_name(name: str) -> str:
    """A single path component: no separators, no leading dots, at most 200 bytes."""
    cleaned = _UNSAFE.sub("_", name.replace("/", "_").replace("\\", "_")).strip(" .")
    return fit_name(cleaned or "unnamed")
