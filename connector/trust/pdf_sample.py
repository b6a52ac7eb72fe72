"""Small, valid, unsigned PDFs made from scratch: demo documents, test inputs and bench loads.

The file is written by hand (classic cross-reference table, Helvetica text) so that no PDF from
elsewhere is ever needed. ``image_bytes`` adds a grey-scale image of about that many bytes on the
first page, to reach realistic sizes (scanned pages). Text is limited to what the standard
Helvetica font can show (ASCII). This module must not sign or verify anything.
"""

from __future__ import annotations

import os


def _escape(text: str) -> bytes:
    ascii_text = text.encode("ascii", "replace")
    return ascii_text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(
    lines: tuple[str, ...] = ("Demo document",),
    *,
    pages: int = 1,
    image_bytes: int = 0,
    seed: bytes | None = None,
) -> bytes:
    """A PDF of ``pages`` A4 pages showing ``lines`` (and the page number) in Helvetica.

    ``image_bytes`` > 0 draws a random grey image of roughly that size on page 1 (random unless
    ``seed`` is given, in which case the image bytes repeat ``seed``).
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree number is known
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    image_ref = 0
    width = 1000
    if image_bytes > 0:
        height = max(1, image_bytes // width)
        size = width * height
        data = (seed * (size // len(seed) + 1))[:size] if seed else os.urandom(size)
        image_ref = add(
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (width, height, size)
            + data + b"\nendstream"
        )
    page_refs: list[int] = []
    for number in range(1, pages + 1):
        text = [b"BT /F1 14 Tf 72 770 Td 18 TL"]
        for line in (*lines, f"Page {number} of {pages}"):
            text.append(b"(" + _escape(line) + b") Tj T*")
        text.append(b"ET")
        if image_ref and number == 1:
            text.append(b"q 300 0 0 200 72 400 cm /Im1 Do Q")
        content = b"\n".join(text)
        content_ref = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        xobjects = b" /XObject << /Im1 %d 0 R >>" % image_ref if image_ref and number == 1 else b""
        page_refs.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >>%s >> >>"
            % (pages_obj, content_ref, font, xobjects)
        ))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    kids = b" ".join(b"%d 0 R" % ref for ref in page_refs)
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_refs))

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, xref_at,
    )
    return bytes(out)
