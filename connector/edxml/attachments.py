"""Attachment payload encoding: base64 on the wire, and the national axis' zip wrapping.

Decoding is bounded: bad base64, an attachment over the size limit, or a zip whose
uncompressed size exceeds the limit (zip bomb) is refused with a clear error before memory
is exhausted. This module only transforms bytes; it must not know the package structure.
"""

from __future__ import annotations

import base64
import binascii
import io
import lzma
import mimetypes
import zipfile
import zlib
from dataclasses import dataclass

from connector.errors import PermanentError

ZIP_MAGIC = b"PK\x03\x04"
ZIP_CONTENT_TYPE = "application/zip"
_BASE64_WS = b" \t\n\r\x0b\x0c"  # what rb"\s" matches; bytes.translate drops them in C


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int = 50 * 1024 * 1024  # decoded (and unzipped) size of one attachment
    max_ratio: int = 200  # uncompressed / compressed beyond this is treated as a bomb


DEFAULT_ATTACHMENT_LIMITS = AttachmentLimits()


class AttachmentError(PermanentError):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, reason=reason, stage="parse")


_DECODE_SLICE = 1 << 20  # characters of payload text decoded at a time


def decode_base64(text: str | bytes, *, name: str, limits: AttachmentLimits) -> bytes:
    """The payload's bytes: white space dropped, strict base64, at most ``limits.max_bytes``.

    Decoded slice by slice into one buffer, so a 27 MB payload text is not also held as
    ASCII bytes, compacted bytes and decoded bytes at once (issue 13.6); the size bound is
    enforced while decoding. Anything unusual (padding before the end, a bad character, a
    size over the limit) is decided by :func:`_decode_whole` on the whole text, so errors
    and their messages are the same as ever.
    """
    if len(text) <= _DECODE_SLICE:
        return _decode_whole(text, name=name, limits=limits)
    out = io.BytesIO()
    pending = b""
    compact_length = 0
    padded = False
    for start in range(0, len(text), _DECODE_SLICE):
        piece = text[start:start + _DECODE_SLICE]
        raw = piece.encode("ascii", "replace") if isinstance(piece, str) else piece
        compact = raw.translate(None, _BASE64_WS)
        compact_length += len(compact)
        if compact_length * 3 // 4 > limits.max_bytes or (padded and compact):
            # Over the limit, or data after padding: decided (refused) as it always was.
            return _decode_whole(text, name=name, limits=limits)
        compact = pending + compact
        whole = len(compact) - len(compact) % 4
        try:
            out.write(binascii.a2b_base64(compact[:whole], strict_mode=True))
        except (binascii.Error, ValueError):
            return _decode_whole(text, name=name, limits=limits)
        padded = padded or compact[:whole].endswith(b"=")
        pending = compact[whole:]
    if pending:  # not a multiple of 4 characters: invalid, said as before
        return _decode_whole(text, name=name, limits=limits)
    return out.getvalue()


def _decode_whole(text: str | bytes, *, name: str, limits: AttachmentLimits) -> bytes:
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = raw.translate(None, _BASE64_WS)
    if len(compact) * 3 // 4 > limits.max_bytes:
        raise AttachmentError(
            f"attachment {name!r} is about {len(compact) * 3 // 4} bytes, over the limit of "
            f"{limits.max_bytes} bytes",
            reason="attachment_too_large",
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttachmentError(
            f"attachment {name!r} is not valid base64 ({exc})", reason="attachment_bad_base64"
        ) from None


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_zip(data: bytes) -> bool:
    return data[:4] == ZIP_MAGIC


def unzip_single(data: bytes, *, name: str, limits: AttachmentLimits) -> tuple[str, bytes] | None:
    """Unwrap a single-entry zip; None if it holds several entries (kept as a zip).

    The declared sizes in a zip can lie, so the entry is read in chunks and refused as soon
    as it passes the limit.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise AttachmentError(
            f"attachment {name!r} looks like a zip but cannot be read ({exc})",
            reason="attachment_bad_zip",
        ) from None
    if len(entries) != 1:
        return None
    entry = entries[0]
    ceiling = min(limits.max_bytes, max(len(data), 1) * limits.max_ratio)
    if entry.file_size > ceiling:
        raise AttachmentError(
            f"attachment {name!r}: zip entry {entry.filename!r} declares {entry.file_size} bytes, "
            f"over the limit of {ceiling} bytes (possible zip bomb)",
            reason="attachment_zip_bomb",
        )
    out = io.BytesIO()
    try:
        with archive.open(entry) as stream:
            while chunk := stream.read(1024 * 1024):
                out.write(chunk)
                if out.tell() > ceiling:
                    raise AttachmentError(
                        f"attachment {name!r}: zip entry {entry.filename!r} expands past "
                        f"{ceiling} bytes (zip bomb)",
                        reason="attachment_zip_bomb",
                    )
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, zlib.error,
            lzma.LZMAError) as exc:  # a corrupt stream fails in its decompressor's words
        raise AttachmentError(
            f"attachment {name!r}: zip entry {entry.filename!r} is corrupt ({exc})",
            reason="attachment_bad_zip",
        ) from None
    return entry.filename, out.getvalue()


def zip_single(name: str, data: bytes) -> bytes:
    """Wrap one file in a zip, deterministically (fixed timestamp), as the axis expects."""
    buffer = io.BytesIO()
    # The entry is a plain file name: a name ending in "/" would make it a folder entry.
    entry = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "attachment"
    info = zipfile.ZipInfo(filename=entry, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


def guess_content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
