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


TOKENS = (b"", b"Type", b"Type/Page", b"12 0 R", b"true>>", b"abc(def)", b"x[1]", b"a%c",
          b"a\x00b", b"a\x0cb", b"end", b"q" * 127 + b" ", b"q" * 128 + b" ", b"q" * 129,
          b"q" * 300 + b"/", b"\xff\xfe ", b"A#20B ")


def _token_outcome(reader: object, data: bytes) -> tuple[object, ...]:
    stream = io.BytesIO(data)
    try:
        value = reader(stream)  # type: ignore[operator]
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return ("value", value, stream.tell())


@pytest.mark.parametrize("data", TOKENS)
def test_tokens_read_as_pyhanko_reads_them(data: bytes) -> None:
    original, _ = pdf_fastparse.originals()
    assert _token_outcome(pdf_fastparse.read_token, data) == _token_outcome(original, data)


NAMES = (b"Type", b"A#20B", b"A#2fB", b"A#2FB", b"#41", b"A#4", b"A#", b"A#G1", b"A#4G",
         b"caf\xc3\xa9", b"caf\xe9", b"A\x7fB", b"A B", b"A(B", b"", b"#23", b"N" * 300)


@pytest.mark.parametrize("name", NAMES)
def test_names_decoded_as_pyhanko_decodes_them(name: bytes) -> None:
    _, original = pdf_fastparse.originals()

    def outcome(decoder: object) -> tuple[object, ...]:
        try:
            value = decoder(name)  # type: ignore[operator]
        except Exception as exc:
            return ("error", type(exc), str(exc))
        return ("value", type(value), str(value))

    expected = outcome(original)
    for _ in range(2):  # remembered or not, the same
        assert outcome(pdf_fastparse.decode_name) == expected
    first, second = pdf_fastparse.decode_name(b"Type"), pdf_fastparse.decode_name(b"Type")
    assert first == second and first is not second  # objects are never shared


def test_a_pdf_reads_the_same(sealed_pdf: bytes) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    pdf_fastparse.install()
    fast = PdfFileReader(io.BytesIO(sealed_pdf), strict=False)
    names = [s.field_name for s in fast.embedded_signatures]
    assert names == ["Signature1", "OrganisationSeal1"]
    assert fast.root["/Type"] == "/Catalog" and int(fast.root["/Pages"]["/Count"]) >= 1
