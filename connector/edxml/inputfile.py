"""Reading a package file named on the command line (``validate``, ``inspect``, ``map``).

Looks before it opens: a folder, a named pipe (which would block the command), a device or
a socket gets an exact message instead of being opened; a missing or unreadable file too.
The read is bounded by the XML size limit. It must not interpret the bytes.
"""

from __future__ import annotations

import errno
import os
import stat

from connector.edxml.xmlsafe import DEFAULT_LIMITS


class InputFileError(Exception):
    """A command-line argument that cannot be read as a package file; ``str`` says why."""


def _kind_of(mode: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "is a folder, not a file (name the package files in it, e.g. FOLDER/*.edxml)"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file: not read (reading could block)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file: not read"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file: not read"
    if not stat.S_ISREG(mode):
        return "is not a regular file: not read"
    return None


def read_package_file(name: str, max_bytes: int = DEFAULT_LIMITS.max_bytes) -> bytes:
    """The bytes of a regular file, or ``InputFileError`` saying exactly what is wrong."""
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise InputFileError(f"{name}: no such file") from None
    except NotADirectoryError:
        raise InputFileError(f"{name}: no such file (a part of the path is not a folder)") from None
    except PermissionError:
        raise InputFileError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"{name}: {exc.strerror or exc}") from None
    problem = _kind_of(info.st_mode)
    if problem:
        raise InputFileError(f"{name}: {problem}")
    if info.st_size > max_bytes:
        raise InputFileError(f"{name}: {info.st_size} bytes, over the limit of {max_bytes} bytes")
    try:
        # O_NONBLOCK: should the file be swapped for a pipe after the stat, open cannot hang.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.EACCES:
            raise InputFileError(f"{name}: permission denied") from None
        raise InputFileError(f"{name}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        problem = _kind_of(os.fstat(handle.fileno()).st_mode)
        if problem:
            raise InputFileError(f"{name}: {problem}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputFileError(f"{name}: over the limit of {max_bytes} bytes")
    return data
