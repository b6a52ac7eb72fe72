"""What our XSDs (schemas/*.xsd) declare, as plain data: element trees with facets.

The receive level uses it to know every element QCVN names (unknown ones become warnings),
the order of children (a reordered package is normalised before its values are checked) and
which children are required; the deviation corpus in the tests derives its mutations from it.
It reads our own schemas with lxml (a small walker for the constructs they use: sequences,
named and inline types, restriction chains, ``ref`` and ``xs:any``). It must not validate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
_X = "{" + XS + "}"


@dataclass(frozen=True)
class Facet:
    """One constraint on a simple value: ``maxLength``, ``pattern``, ``enumeration`` ..."""

    name: str
    value: str


@dataclass(frozen=True)
class SimpleType:
    builtin: str  # the XSD built-in at the bottom of the chain: string, positiveInteger ...
    facets: tuple[Facet, ...] = ()

    def values(self, name: str) -> list[str]:
        return [f.value for f in self.facets if f.name == name]


@dataclass
class ElementDecl:
    name: str
    min_occurs: int = 1
    max_occurs: int | None = 1  # None: unbounded
    simple: SimpleType | None = None
    children: list[ElementDecl] = field(default_factory=list)
    any_namespace: str | None = None  # an xs:any wildcard among the children (its namespace)
    skip_content: bool = False  # content not checked (the legacy Signature placeholder)
    required_attributes: tuple[str, ...] = ()

    def child(self, name: str) -> ElementDecl | None:
        for child in self.children:
            if child.name == name:
                return child
        return None

    def walk(self, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], ElementDecl]]:
        """Every declaration below (and including) this one, with its path of names."""
        here = (*path, self.name)
        found = [(here, self)]
        for child in self.children:
            found.extend(child.walk(here))
        return found


class _Schema:
    def __init__(self, path: Path) -> None:
        self.types: dict[str, etree._Element] = {}
        self.elements: dict[str, etree._Element] = {}
        self.roots: list[etree._Element] = []
        self._load(path)

    def _load(self, path: Path) -> None:
        tree = etree.parse(str(path)).getroot()
        for item in tree:
            if not isinstance(item.tag, str):
                continue
            if item.tag == _X + "include":
                self._load(path.parent / item.get("schemaLocation", ""))
            elif item.tag in (_X + "simpleType", _X + "complexType"):
                self.types[item.get("name", "")] = item
            elif item.tag == _X + "element":
                self.elements[item.get("name", "")] = item
                if path.name != "common.xsd":
                    self.roots.append(item)

    @staticmethod
    def _local(qname: str) -> str:
        return qname.rpartition(":")[2]

    def element(self, node: etree._Element) -> ElementDecl:
        ref = node.get("ref")
        target = self.elements[self._local(ref)] if ref else node
        decl = ElementDecl(
            name=target.get("name", ""),
            min_occurs=int(node.get("minOccurs", "1")),
            max_occurs=None
            if node.get("maxOccurs") == "unbounded"
            else int(node.get("maxOccurs", "1")),
        )
        type_name = target.get("type")
        if type_name is not None:
            local = self._local(type_name)
            named = self.types.get(local) if type_name.startswith("edXML:") else None
            if named is None:
                decl.simple = SimpleType(local)
            elif named.tag == _X + "simpleType":
                decl.simple = self.simple(named)
            else:
                self.complex(named, decl)
            return decl
        for inline in target:
            if inline.tag == _X + "simpleType":
                decl.simple = self.simple(inline)
            elif inline.tag == _X + "complexType":
                self.complex(inline, decl)
        return decl

    def simple(self, node: etree._Element) -> SimpleType:
        restriction = node.find(_X + "restriction")
        if restriction is None:
            return SimpleType("string")
        facets = tuple(
            Facet(etree.QName(f).localname, f.get("value", ""))
            for f in restriction
            if isinstance(f.tag, str)
        )
        base = restriction.get("base", "xs:string")
        if base.startswith("edXML:"):
            inner = self.simple(self.types[self._local(base)])
            return SimpleType(inner.builtin, inner.facets + facets)
        return SimpleType(self._local(base), facets)

    def complex(self, node: etree._Element, decl: ElementDecl) -> None:
        sequence = node.find(_X + "sequence")
        decl.required_attributes = tuple(
            a.get("name", "") for a in node.findall(_X + "attribute") if a.get("use") == "required"
        )
        if sequence is None:
            return
        for item in sequence:
            if item.tag == _X + "element":
                child = self.element(item)
                decl.children.append(child)
            elif item.tag == _X + "any":
                if decl.name == "Signature" or item.get("processContents") == "skip":
                    decl.skip_content = True
                decl.any_namespace = item.get("namespace")


def schema_dir() -> Path:
    from connector.edxml.schema import schema_dir as configured

    return configured()


@functools.cache
def declarations(kind: str) -> ElementDecl:
    """The root ``edXML`` declaration of ``edoc`` or ``status`` packages."""
    schema = _Schema(schema_dir() / f"{kind}.xsd")
    return schema.element(schema.roots[0])


@functools.cache
def known_names() -> frozenset[str]:
    """Every element name our schemas declare (the bounded label set of deviation metrics)."""
    names: set[str] = set()
    for kind in ("edoc", "status"):
        names.update(decl.name for _, decl in declarations(kind).walk())
    return frozenset(names)
