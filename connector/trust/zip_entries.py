"""The files inside a received zip attachment, read within bounds, for the content checks.

A multi-entry zip stays a zip after parsing (only single-entry zips are unwrapped), so the
checks on receipt look inside it: :func:`read_entries` returns every file entry's name and
bytes, refusing — before memory is spent — a zip with too many entries, one whose entries
expand past the budget (zip bomb: declared sizes can lie, so entries are read in chunks),
an encrypted entry (its content cannot be inspected), and an unreadable archive. Nesting is
bounded by the caller (``connector.trust.content``) with :attr:`ZipLimits.depth`.

This module only reads bytes; it decides nothing about the sender and must not read
configuration.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from dataclasses import dataclass

from connector.errors import PermanentError
from connector.printable import printable

ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ZipLimits:
    entries: int = 1000  # file entries in one archive
    total_bytes: int = 50 * 1024 * 1024  # all entries of one archive, uncompressed
    ratio: int = 200  # uncompressed / compressed beyond this is treated as a bomb
    depth: int = 2  # archives inside archives (a .docx inside a .zip is depth 2)


DEFAULT_ZIP_LIMITS = ZipLimits()


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def shown(name: str) -> str:
    """An entry name as quoted in messages (escaped, bounded: the sender chose it)."""
    return printable(name, 100)


def read_entries(data: bytes, *, what: str, limits: ZipLimits = DEFAULT_ZIP_LIMITS
                 ) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every file entry of the zip ``data``; raises PermanentError
    (``attachment_bad_zip``, ``attachment_zip_too_many``, ``attachment_zip_bomb``,
    ``attachment_zip_encrypted``)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise PermanentError(f"{what} is a zip that cannot be read ({exc})",
                             reason="attachment_bad_zip") from None
    if len(entries) > limits.entries:
        raise PermanentError(
            f"{what} is a zip of {len(entries)} files, over the limit of {limits.entries}",
            reason="attachment_zip_too_many")
    budget = min(limits.total_bytes, max(len(data), 1) * limits.ratio)
    used, found = 0, []
    for info in entries:
        label = f"{what}, entry '{shown(info.filename)}'"
        if info.flag_bits & 0x1:
            raise PermanentError(f"{label} is encrypted: its content cannot be checked",
                                 reason="attachment_zip_encrypted")
        if used + info.file_size > budget:
            raise PermanentError(
                f"{label} declares {info.file_size} bytes, past the zip's budget of {budget} "
                "bytes (possible zip bomb)", reason="attachment_zip_bomb")
        out = io.BytesIO()
        try:
            with archive.open(info) as stream:
                while chunk := stream.read(1024 * 1024):
                    out.write(chunk)
                    if used + out.tell() > budget:
                        raise PermanentError(
                            f"{label} expands past the zip's budget of {budget} bytes (zip bomb)",
                            reason="attachment_zip_bomb")
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, zlib.error,
                lzma.LZMAError) as exc:  # a corrupt stream fails in its decompressor's words
            raise PermanentError(f"{label} is corrupt ({exc})",
                                 reason="attachment_bad_zip") from None
        used += out.tell()
        found.append((info.filename, out.getvalue()))
    return found
