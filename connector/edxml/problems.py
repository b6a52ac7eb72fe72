"""Structured problems found in an edXML package, and the error that carries them.

A problem names where (line and element path), what element, and what is wrong, so a
person can fix the package and a machine can count it. This module must not parse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from connector.errors import PermanentError

# Characters that would let a package's text forge lines or reorder what a terminal shows.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_MESSAGE = 400
MAX_PATH = 300
MAX_ELEMENT = 100


def printable(text: str, limit: int) -> str:
    """``text`` on one line, control and bidirectional characters escaped, at most ``limit``
    characters: what a package says about itself is quoted, never passed on raw."""
    head = text[: limit + 1]
    shown = _UNSAFE.sub(lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", head)
    if len(text) > limit or len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown


@dataclass(frozen=True)
class Problem:
    """One problem; its texts may quote the package, so they are bounded and escaped here."""

    message: str
    path: str = ""  # e.g. /edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/Email
    line: int | None = None
    element: str | None = None  # local name of the element concerned
    reason: str = "invalid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", printable(self.message, MAX_MESSAGE))
        object.__setattr__(self, "path", printable(self.path, MAX_PATH))
        if self.element is not None:
            object.__setattr__(self, "element", printable(self.element, MAX_ELEMENT))

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class EdxmlError(PermanentError):
    """The bytes are XML but not an acceptable edXML package."""

    def __init__(self, problems: Sequence[Problem], *, reason: str | None = None) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else Problem("invalid edXML package")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}", reason=reason or first.reason, stage="parse")
