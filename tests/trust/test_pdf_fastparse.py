"""The fast hex-string reader gives pyHanko's own result, position and error on every input."""

from __future__ import annotations

import io
import itertools
import random

import pytest
from pyhanko.pdf_utils import generic

from connector.trust import pdf_fastparse

BODIES = (
    b"", b"4", b"41", b"414", b"0a0B", b"DEADbeef", b"30 82\n01\r\n0a\t\x0c\x0000",
    b"  ", b"4 1 4", b"41%comment>42\n43", b"41 % c\r42", b"4G", b"41-42", b"41<42",
    b"\xff", b"41\x0b42", b"41(42)",
)
TAILS = (b">", b"> trailing /Name 1 0 R", b">>", b"", b"% no end", b"\n>\n")


def _outcome(reader: object, data: bytes) -> tuple[object, ...]:
    stream = io.BytesIO(data)
    try:
        value = reader(stream)  # type: ignore[operator]
    except Exception as exc:  # every error must be the same one
        return ("error", type(exc), str(exc))
    return ("value", type(value), bytes(value.original_bytes), stream.tell())


def _inputs() -> list[bytes]:
    generated = [b"<" + body + tail for body, tail in itertools.product(BODIES, TAILS)]
    rng = random.Random(13)
    for size in (1, 255, 4096, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 40_000):
        raw = rng.randbytes(size).hex().encode()
        spaced = b"\n".join(raw[i:i + 64] for i in range(0, len(raw), 64))
        generated += [b"<" + raw + b">", b"<" + spaced + b"> 0 R", b"<" + raw[:-1] + b">",
                      b"<" + raw + b"Z>", b"<" + raw]
    return generated


@pytest.mark.parametrize("data", _inputs(), ids=lambda d: repr(d[:24]) + f"..{len(d)}")
def test_same_as_pyhanko(data: bytes) -> None:
    assert _outcome(pdf_fastparse.read_hex_string, data) == _outcome(
        pdf_fastparse.original_reader(), data)


def test_installed_once_and_used_by_the_parser() -> None:
    pdf_fastparse.install()
    pdf_fastparse.install()
    assert generic.read_hex_string_from_stream is pdf_fastparse.read_hex_string
    assert pdf_fastparse.original_reader() is not pdf_fastparse.read_hex_string
    value: object = generic.read_object(
        io.BytesIO(b"<4142 43>"), None)  # type: ignore[arg-type]  # no references to resolve
    assert isinstance(value, generic.ByteStringObject | generic.TextStringObject)
    assert bytes(value.original_bytes) == b"ABC"
