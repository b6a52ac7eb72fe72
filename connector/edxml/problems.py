"""Structured problems found in an edXML package, and the error that carries them.

A problem names where (line and element path), what element, and what is wrong, so a
person can fix the package and a machine can count it. This module must not parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from connector.errors import PermanentError
from connector.printable import printable

MAX_MESSAGE = 400
MAX_PATH = 300
MAX_ELEMENT = 100


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
