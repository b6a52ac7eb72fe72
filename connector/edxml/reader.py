"""Reading one untrusted edXML tree: lookups by namespace + local name, problem collection.

``Reader`` walks a parsed tree prefix-agnostically, accepts the spellings seen in real
traffic (``ALIASES``), and collects every problem with its line and path instead of
stopping at the first. It must not build the model (``parser``) or validate (``schema``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lxml import etree
from lxml.etree import _Element

from connector.edxml.model import NS
from connector.edxml.problems import Problem

T = TypeVar("T")
MAX_COLLECTED = 500  # problems (and, apart, warnings) one package can report


# Spellings seen in real traffic, first one is what we emit.
ALIASES: dict[str, tuple[str, ...]] = {
    "OrganizationInCharge": ("OrganizationInCharge", "OrganInCharge"),
    "Bussiness": ("Bussiness", "Business"),
    "BussinessDocType": ("BussinessDocType", "BusinessDocType"),
    "BussinessDocReason": ("BussinessDocReason", "BusinessDocReason"),
    "BussinessDocumentInfo": ("BussinessDocumentInfo", "BusinessDocumentInfo"),
}


# Clark-notation tags per name (namespace URI + local name, whatever the prefix).
_TAGS: dict[str, set[str]] = {
    name: {f"{{{NS}}}{a}" for a in aliases} for name, aliases in ALIASES.items()
}


@dataclass
class Reader:
    """Walks one document, collecting problems instead of stopping at the first."""

    problems: list[Problem] = field(default_factory=list)  # refusals: receiving needs these
    warnings: list[Problem] = field(default_factory=list)  # departures the model absorbed
    more_problems: int = 0  # beyond MAX_COLLECTED, counted only
    more_warnings: int = 0

    def collected(self, kind: str) -> list[Problem]:
        """``problems`` or ``warnings``, with a last line counting those left out."""
        found = self.problems if kind == "problems" else self.warnings
        more = self.more_problems if kind == "problems" else self.more_warnings
        if more:
            return [*found, Problem(f"... and {more} more", reason=found[-1].reason)]
        return found

    # -- navigation -------------------------------------------------------------------------
    @staticmethod
    def local(element: _Element) -> str:
        return etree.QName(element).localname if isinstance(element.tag, str) else ""

    def children(self, parent: _Element | None, name: str) -> list[_Element]:
        if parent is None:
            return []
        tags = _TAGS.get(name) or {f"{{{NS}}}{n}" for n in ALIASES.get(name, (name,))}
        return [child for child in parent if child.tag in tags]

    def child(self, parent: _Element | None, name: str) -> _Element | None:
        found = self.children(parent, name)
        return found[0] if found else None

    def path(self, element: _Element | None, extra: str = "") -> str:
        parts: list[str] = []
        node = element
        while node is not None:
            name = self.local(node)
            parent = node.getparent()
            if parent is not None:
                # Counted in C (itersiblings with a tag): a path stays cheap among 100 000
                # siblings, where a list of them per warning made big packages quadratic.
                before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
                after = next(node.itersiblings(node.tag), None) is not None
                if before or after:
                    name += f"[{before + 1}]"
            parts.append(name)
            node = parent
        base = "/" + "/".join(reversed(parts))
        return f"{base}/{extra}" if extra else base

    def problem(
        self, element: _Element | None, message: str, *, name: str = "", reason: str = "invalid"
    ) -> None:
        if len(self.problems) >= MAX_COLLECTED:
            self.more_problems += 1  # bounded: a path per problem costs the element's siblings
            return
        line = element.sourceline if element is not None else None
        self.problems.append(
            Problem(
                message,
                path=self.path(element, name),
                line=line,
                element=name or (self.local(element) if element is not None else None),
                reason=reason,
            )
        )

    def warn(self, element: _Element | None, message: str, *, name: str = "") -> None:
        if len(self.warnings) >= MAX_COLLECTED:
            self.more_warnings += 1
            return
        line = element.sourceline if element is not None else None
        self.warnings.append(
            Problem(
                message,
                path=self.path(element, name),
                line=line,
                element=name or (self.local(element) if element is not None else None),
                reason="deviation",
            )
        )

    # -- values ----------------------------------------------------------------------------
    def text(self, parent: _Element | None, name: str, *, required: bool = False) -> str | None:
        element = self.child(parent, name)
        value = (element.text or "").strip() if element is not None else ""
        if element is not None and element.text is not None and value != element.text:
            value = element.text.strip()
        if not value:
            if required and parent is not None:
                self.problem(
                    parent,
                    f"required element {name} is missing or empty",
                    name=name,
                    reason="missing_field",
                )
            return None
        return value

    def convert(
        self,
        parent: _Element | None,
        name: str,
        func: Callable[[str], T],
        expected: str,
        *,
        required: bool = False,
        needed: bool | None = None,
    ) -> T | None:
        """The value converted, or None. A bad value is a refusal only when receiving needs
        it (``needed``, by default ``required``); otherwise None, and the schema pass of the
        receive level reports the departure as a warning."""
        value = self.text(parent, name, required=required)
        if value is None:
            return None
        try:
            return func(value)
        except (ValueError, KeyError):
            if required if needed is None else needed:
                self.problem(
                    self.child(parent, name), f"{value!r} is not {expected}", reason="bad_format"
                )
            return None
