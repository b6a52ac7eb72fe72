"""Faster readers for PDF hex strings, tokens and names, with pyHanko's exact results.

pyHanko reads a hex string one byte at a time through Python calls; a signature's ``/Contents``
is several thousand hex digits, read again for every signature of every PDF (about a third of
the CPU spent verifying a signed PDF). :func:`install` replaces that reader in
``pyhanko.pdf_utils.generic`` with one that finds the closing ``>``, drops PDF white space
and checks the digits on whole byte strings.

Only the plain case takes the fast path: a ``%`` (a comment, which pyHanko skips up to the
end of its line, ``>`` included), no closing ``>`` or any character that is not a hex digit
or white space sends the stream back to where the string began and lets pyHanko's own reader
read it, so every error (and its message) is pyHanko's.

Tokens (names, numbers, keywords) are read up to the next white space or delimiter in one
block instead of byte by byte (a token longer than a block goes to pyHanko's reader), and a
name's escapes are decoded once per distinct name (``/Type``, ``/Page``... recur thousands of
times; an invalid name raises every time). Tests compare both readers on every kind of input.
This module must not read anything but these three kinds of token.
"""

from __future__ import annotations

import binascii
import io
import re
import threading
from collections.abc import Callable
from typing import Any

from pyhanko.pdf_utils import generic, misc

_CHUNK = 16 * 1024
_WHITESPACE = bytes(misc.PDF_WHITESPACE)
_HEX = bytes(generic.HEX_DIGITS)
_lock = threading.Lock()
_original: Callable[[Any], Any] = generic.read_hex_string_from_stream  # pyHanko's own


def read_hex_string(stream: Any) -> Any:
    """``generic.read_hex_string_from_stream``, reading whole blocks instead of single bytes."""
    original = _original
    start = stream.tell()
    stream.read(1)  # the opening "<"
    chunks = []
    while True:
        block = stream.read(_CHUNK)
        end = block.find(b">")
        if end >= 0:
            chunks.append(block[:end])
            stream.seek(end + 1 - len(block), io.SEEK_CUR)
            break
        if not block:
            stream.seek(start)
            return original(stream)  # unterminated: pyHanko says how
        chunks.append(block)
    body = b"".join(chunks)
    digits = body.translate(None, _WHITESPACE)
    if b"%" in body or digits.translate(None, _HEX):
        stream.seek(start)
        return original(stream)  # a comment or a stray character: pyHanko's reading
    if len(digits) % 2:
        digits += b"0"  # as pyHanko: a missing last digit is 0
    return generic.pdf_string(binascii.unhexlify(digits))


_original_token: Callable[[Any], bytes] = generic.read_until_delimiter  # type: ignore[attr-defined]
_original_name: Callable[[bytes], Any] = generic._decode_name
_TOKEN_END = re.compile(b"[" + re.escape(bytes(misc.PDF_WHITESPACE + misc.PDF_DELIMITERS)) + b"]")
_TOKEN_CHUNK = 128
_names: dict[bytes, str] = {}
_MAX_NAMES = 4096


def read_token(stream: Any) -> bytes:
    """``read_until_delimiter``: the bytes up to the next white space or delimiter, the stream
    left on that character (at the end of the stream if none), read in one block."""
    start = stream.tell()
    block = stream.read(_TOKEN_CHUNK)
    found = _TOKEN_END.search(block)
    if found is not None:
        stream.seek(start + found.start())
        return bytes(block[:found.start()])
    if len(block) < _TOKEN_CHUNK and not stream.read(1):
        return bytes(block)  # the stream ended inside the token, as pyHanko reads it
    stream.seek(start)
    return _original_token(stream)  # a longer token: pyHanko's own reading


def decode_name(name_bytes: bytes) -> Any:
    """``_decode_name``: a new NameObject each time (pyHanko sets attributes on objects it
    reads), its text decoded once per distinct name; an invalid name raises every time."""
    text = _names.get(name_bytes)
    if text is None:
        decoded = _original_name(name_bytes)
        text = str(decoded)
        if len(name_bytes) <= 256:
            with _lock:
                if len(_names) >= _MAX_NAMES:
                    _names.clear()
                _names[name_bytes] = text
    return generic.NameObject(text)


def install() -> None:
    """Use this module's readers for pyHanko's hex strings, tokens and names (once per
    process)."""
    with _lock:
        generic.read_hex_string_from_stream = read_hex_string
        generic.read_until_delimiter = read_token  # type: ignore[attr-defined]
        generic._decode_name = decode_name


def original_reader() -> Callable[[Any], Any]:
    """pyHanko's own reader (for tests comparing both)."""
    return _original


def originals() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """pyHanko's own token reader and name decoder (for tests comparing both)."""
    return _original_token, _original_name
