"""Document files of a record: inline base64, or a claim check into the spool directory.

A record names each file and either carries it inline (base64) or references a file the
local system put in the configured attachments directory (for big files). References are
plain relative names inside that directory: absolute paths, ``..``, links leading outside,
and anything but a regular file are refused before it is opened (a FIFO must never block
intake); a file is opened without blocking and read at most up to the limit. The reverse
direction gives files back with names that fit any file system and never collide with the
files the spool writes beside them (``connector.local.filenames``). This module handles
bytes and names; it must not know about packages' XML.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re
import stat
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from connector.local.filenames import DELIVERY_RESERVED, fit_names
from connector.mapping.values import ValueProblem

MAX_FILE_BYTES = 50 * 1024 * 1024
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_MAGIC = {
    "application/pdf": (b"%PDF-", "a PDF"),
    "application/zip": (b"PK\x03\x04", "a zip archive"),
}


def content_type_for(name: str, declared: str | None) -> str:
    if declared:
        return declared.strip().lower()
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def check_name(name: str) -> str:
    clean = unicodedata.normalize("NFC", name.strip())
    if not clean or clean in (".", "..") or _UNSAFE_NAME.search(clean):
        raise ValueProblem("a file name must be a plain name without '/', '\\' or control "
                           "characters")
    return clean


def decode_inline(text: str, *, limit: int = MAX_FILE_BYTES) -> bytes:
    compact = "".join(text.split())
    if len(compact) * 3 // 4 > limit:
        raise ValueProblem(f"the inline file is over the {limit}-byte limit (use a claim check)")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueProblem("the inline file is not valid base64") from None


def read_claim_check(reference: str, spool: Path | None, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file referenced by name inside ``spool`` (traversal refused)."""
    if spool is None:
        raise ValueProblem("the record references a file but no attachments directory is "
                           "configured (attachments_dir)")
    ref = reference.strip()
    if (not ref or "\x00" in ref or PurePosixPath(ref).is_absolute()
            or PureWindowsPath(ref).is_absolute() or PureWindowsPath(ref).drive):
        raise ValueProblem("a file reference must be a relative name inside the attachments "
                           "directory")
    parts = PurePosixPath(ref.replace("\\", "/")).parts
    if any(part == ".." for part in parts):
        raise ValueProblem("a file reference may not contain '..' (path traversal refused)")
    base = spool.resolve()
    candidate = (base / Path(*parts)).resolve()
    if candidate != base and base not in candidate.parents:
        raise ValueProblem("the file reference leads outside the attachments directory "
                           "(refused)")
    try:
        mode = os.lstat(candidate).st_mode
        if not stat.S_ISREG(mode):  # never open a FIFO or a device: opening one may block
            raise ValueProblem(f"the reference {ref!r} is {_kind(mode)}, not a regular file")
        fd = os.open(candidate, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueProblem(f"the referenced file {ref!r} is not in the attachments "
                           "directory") from None
    except OSError as exc:
        raise ValueProblem(f"the referenced file {ref!r} cannot be read: "
                           f"{exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueProblem(f"the reference {ref!r} is not a regular file")
        if info.st_size > limit:
            raise ValueProblem(f"the referenced file is {info.st_size} bytes, over the "
                               f"{limit}-byte limit")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(limit + 1)
        if len(data) > limit:  # it grew while being read
            raise ValueProblem(f"the referenced file is over the {limit}-byte limit")
        return data
    finally:
        if fd >= 0:
            os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a special file"


def check_magic(data: bytes, content_type: str) -> None:
    expected = _MAGIC.get(content_type)
    if expected is not None and not data.startswith(expected[0]):
        raise ValueProblem(f"is declared {content_type} but is not {expected[1]}")


def local_file_names(names: list[str]) -> list[str]:
    """File names for files handed to the local side: unique, fitting any file system
    (at most 200 bytes, no control or bidi characters, no device names) and never one of the
    names the spool writes beside them (record.json, delivery.json)."""
    return fit_names(names, reserved=DELIVERY_RESERVED)
