"""A strict, small multipart/form-data reader for the emulator (the stdlib has none since 3.13).

It returns the named parts' bytes exactly as sent. This module must not know about VXP.
"""

from __future__ import annotations


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type, or None if it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("latin-1")
    return None


def parse_multipart(body: bytes, boundary: bytes) -> dict[str, bytes]:
    """The named parts of a multipart/form-data body (last one wins for repeated names)."""
    parts: dict[str, bytes] = {}
    delimiter = b"--" + boundary
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = None
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                for item in line.split(";")[1:]:
                    key, _, value = item.strip().partition("=")
                    if key.lower() == "name":
                        name = value.strip('"')
        if name:
            parts[name] = content
    return parts
