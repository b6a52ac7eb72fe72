"""Declared encodings other than UTF-8, as other hubs' software writes them.

Generated family: every shared sample × every encoding a peer may declare (UTF-16 with its
byte order mark, big- or little-endian; ISO-8859-1 and windows-1258 with character references
for what they cannot hold; UTF-8 bytes labelled UTF-16, as .NET's StringWriter writes them).
Each is read as the same package as the UTF-8 original, with a warning naming the encoding.
What stays refused: undeclared non-UTF-8 bytes, encodings we do not know, and a DOCTYPE
hidden in UTF-16.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.edxml import check_package, parse_package, peek
from connector.edxml.strict import strict_problems
from connector.edxml.xmlsafe import UnsafeXmlError, parse_untrusted, strip_stray_prefix
from tests.samples import sample_params


def _utf8(path: Path) -> str:
    body, _ = strip_stray_prefix(path.read_bytes())
    return body.decode("utf-8")


def _declared(text: str, label: str) -> str:
    head, rest = text.split("?>", 1)
    if "encoding=" in head:
        head = head.replace('encoding="UTF-8"', f'encoding="{label}"')
    else:
        head += f' encoding="{label}"'
    return head + "?>" + rest


def _encoded(text: str, label: str, codec: str) -> bytes:
    return _declared(text, label).encode(codec, errors="xmlcharrefreplace")


ENCODINGS = {
    "utf-16": lambda t: _encoded(t, "UTF-16", "utf-16"),
    "utf-16be-bom": lambda t: b"\xfe\xff" + _encoded(t, "UTF-16", "utf-16-be"),
    "utf-16le-bom": lambda t: b"\xff\xfe" + _encoded(t, "utf-16", "utf-16-le"),
    "iso-8859-1": lambda t: _encoded(t, "ISO-8859-1", "latin-1"),
    "windows-1258": lambda t: _encoded(t, "windows-1258", "cp1258"),
    "utf-8-labelled-utf-16": lambda t: _declared(t, "utf-16").encode("utf-8"),
}


@pytest.mark.parametrize("label", sorted(ENCODINGS))
@pytest.mark.parametrize("path", sample_params())
def test_other_declared_encodings_read_as_the_same_package(path: Path, label: str) -> None:
    text = _utf8(path)
    data = ENCODINGS[label](text)
    original = parse_package(text.encode("utf-8"))
    assert parse_package(data) == original
    assert peek(data) == peek(text.encode("utf-8"))
    result = check_package(data)
    assert result.ok, [str(p) for p in result.problems]
    assert any("encoding" in w.message for w in result.warnings), [str(w) for w in result.warnings]
    assert any("UTF-8" in p.message for p in strict_problems(data))  # the emit level: UTF-8


REFUSED = {
    "unknown encoding": b'<?xml version="1.0" encoding="x-klingon"?><edXML/>',
    "text codec": b'<?xml version="1.0" encoding="unicode_escape"?><edXML/>',
    "utf-8 declared, latin-1 bytes": '<?xml version="1.0" encoding="UTF-8"?><a>Cà</a>'.encode(
        "latin-1"
    ),
    "utf-16 with a doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x '
    '"y">]><a>&x;</a>'.encode("utf-16"),
    "odd utf-16": b"\xff\xfe<\x00a",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_stays_refused(case: str) -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        parse_untrusted(REFUSED[case])
    assert caught.value.reason in ("xml_encoding", "xml_doctype_forbidden", "xml_malformed")
