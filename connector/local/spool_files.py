"""File-level helpers of the spool folder: bounded reads, and whose fault a failure is.

``read_record`` opens a record without following links and without blocking (a FIFO named
``x.json`` must never stall intake), checks that it is a regular file no bigger than the
limit *before* reading, and reads at most limit + 1 bytes. ``item_fault`` tells an error
caused by one item (a name too long for the file system, a name the file system cannot
store, a file too large for it) from an outage of the folder itself (disk full, read-only,
missing mount, no permission), which is the only kind that makes work wait. This module
must not know the spool's layout.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from connector.errors import PermanentError

# Failures that one name or one file causes; the next item may well succeed.
ITEM_ERRNOS = frozenset({
    errno.ENAMETOOLONG,
    errno.EILSEQ,  # a name the file system cannot encode
    errno.EINVAL,  # a character the file system refuses (SMB/NTFS: ':', trailing dots)
    errno.EFBIG,  # larger than the file system allows for one file
    errno.ELOOP,  # a symbolic link where a file was expected (O_NOFOLLOW)
    errno.EISDIR,
    errno.ENXIO,  # a FIFO without writer, a device without driver
})


def item_fault(exc: OSError) -> bool:
    """True when ``exc`` is the fault of the item being read or written, not of the folder."""
    return exc.errno in ITEM_ERRNOS


def kind_of(mode: int) -> str:
    """Words for a file type, for messages ("a FIFO", "a folder")."""
    for test, words in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def not_regular(path: Path, mode: int, what: str = "record") -> PermanentError:
    return PermanentError(
        f"{what} {path.name!r} is {kind_of(mode)}, not a regular file: only plain files are "
        "read (write the record to a temporary name, then rename it into place)",
        reason="record_not_regular_file",
        stage="intake",
    )


def too_large(path: Path, size: int, limit: int, what: str = "record") -> PermanentError:
    return PermanentError(
        f"{what} {path.name!r} is {size} bytes, over the {limit}-byte limit "
        "(local.limits.max_record_bytes); put big files beside it as claim-check files",
        reason="record_too_large",
        stage="intake",
    )


def read_record(path: Path, limit: int) -> tuple[bytes, os.stat_result] | PermanentError:
    """The bytes of a regular file of at most ``limit`` bytes, or why it is refused.

    Raises ``OSError`` only when the file vanished or cannot be opened for reasons of the
    folder (the caller tries again at the next scan)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            return not_regular(path, os.lstat(path).st_mode)
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return not_regular(path, info.st_mode)
        if info.st_size > limit:
            return too_large(path, info.st_size, limit)
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        body = b"".join(chunks)
        if len(body) > limit:  # it grew while being read
            return too_large(path, len(body), limit)
        return body, info
    finally:
        os.close(fd)
