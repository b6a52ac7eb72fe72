"""The mapping file: its schema (pydantic), and its compilation into checked, ready parts.

``compile_mapping(path)`` reads one YAML mapping file and either returns a ``CompiledMapping``
(paths parsed, transforms and tables resolved, required edXML fields present, the
classification gate configured) or raises ``MappingFileError`` listing every problem with
file, line, what is wrong and what to do. The format is described in mappings/README.md.
This module checks and compiles; it must not read records.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.mapping import classification as gate
from connector.mapping import targets as tg
from connector.mapping.paths import (
    JsonPath,
    PathSyntaxError,
    XmlPath,
    parse_json_path,
    parse_xml_path,
)
from connector.mapping.transforms import (
    BUILTIN_TABLES,
    CodeTable,
    Transform,
    TransformSpecError,
    compile_transform,
)
from connector.mapping.yamlsource import Issue, Loc, Locations, MappingFileError, load_located

Scalar = str | int | float | bool | dt.date | None
_CLASSES = Literal["thuong", "mat", "toi_mat", "tuyet_mat"]


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    item: str | None = None
    const: Scalar = None
    default: Scalar = None
    required: bool = False
    transform: list[str] = Field(default_factory=list)
    fields: dict[str, FieldSpec] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"path": value}
        if isinstance(value, dict) and isinstance(value.get("transform"), str):
            return {**value, "transform": [value["transform"]]}
        return value


class RecordSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    syntax: Literal["json", "xml"]
    namespaces: dict[str, str] = Field(default_factory=dict)
    id: str


class ClassificationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str | None = None
    # Further places the value may be (legacy XML writes it as an attribute, DoMat/@Ma):
    # every place is read, and any secret value among them refuses the record.
    also: list[str] = Field(default_factory=list)
    values: dict[str, _CLASSES] = Field(default_factory=dict)
    absent_means_public: bool = False
    never_secret: str | None = None


class SectionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = None
    constants: dict[str, str | int | bool] = Field(default_factory=dict)
    fields: dict[str, FieldSpec]


class MappingFileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: Literal[1]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    record: RecordSpec
    classification: ClassificationSpec
    tables: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    document: SectionSpec
    status: SectionSpec | None = None


_ALLOWED_KEYS = {
    "top": sorted(MappingFileSpec.model_fields),
    "record": sorted(RecordSpec.model_fields),
    "classification": sorted(ClassificationSpec.model_fields),
    "section": sorted(SectionSpec.model_fields),
    "field": sorted(FieldSpec.model_fields),
}

AnyPath = JsonPath | XmlPath


@dataclass(frozen=True)
class CompiledField:
    target: tg.Target
    loc: Loc
    path: AnyPath | None
    item: AnyPath | None
    const: Any
    has_const: bool
    default: Any
    required: bool
    transforms: tuple[Transform, ...]
    fields: dict[str, CompiledField] = field(default_factory=dict)

    @property
    def where(self) -> str:
        name = self.target.name
        return f"{name} ({self.path.text})" if self.path is not None else name


@dataclass(frozen=True)
class CompiledSection:
    root: str | None
    constants: dict[str, Any]
    fields: dict[str, CompiledField]
    constant_paths: tuple[tuple[AnyPath, Any], ...]


@dataclass(frozen=True)
class CompiledClassification:
    path: AnyPath | None
    field: str
    values: dict[str, gate.Classification]
    absent_means_public: bool
    never_secret: str | None
    also: tuple[AnyPath, ...] = ()


@dataclass(frozen=True)
class CompiledMapping:
    name: str
    source: str
    description: str
    syntax: Literal["json", "xml"]
    namespaces: dict[str, str]
    id_path: AnyPath
    classification: CompiledClassification
    tables: dict[str, CodeTable]
    document: CompiledSection
    status: CompiledSection | None


# ----------------------------------------------------------------------------- errors
def _pydantic_issue(locs: Locations, err: Mapping[str, Any]) -> Issue:
    loc: Loc = tuple(p for p in err.get("loc", ()) if not _is_type_tag(p))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        where = _container(loc[:-1])
        return locs.issue(loc, f"unknown key {loc[-1]!r}",
                          f"allowed here: {', '.join(_ALLOWED_KEYS[where])}" + _suggest(
                              str(loc[-1]), _ALLOWED_KEYS[where]))
    if kind == "missing":
        hint = {
            "id": "say where the local record id is (the idempotency key), e.g. id: id",
            "syntax": "write syntax: json or syntax: xml",
            "mapping": "start the file with 'mapping: 1' (the format version)",
        }.get(str(loc[-1]), "add it (see mappings/README.md)")
        return locs.issue(loc, f"required key {loc[-1]!r} is missing", hint)
    if kind == "literal_error" and loc == ("mapping",):
        return locs.issue(loc, f"unsupported mapping format version {err.get('input')!r}",
                          "this connector reads 'mapping: 1'")
    if kind == "string_pattern_mismatch" and loc == ("name",):
        return locs.issue(loc, "a mapping name is lower-case letters, digits, '.', '_', '-'",
                          "rename it, e.g. qlvb-json")
    return locs.issue(loc, f"{err.get('msg', 'invalid value')} (got {err.get('input')!r})",
                      "fix the value")


def _is_type_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"str", "int", "float", "bool", "date", "none",
                                                "list[str]", "function-before[_shorthand(), "
                                                "FieldSpec]"} or part.startswith("function-"))


def _container(loc: Loc) -> str:
    if not loc:
        return "top"
    if loc[0] in ("record", "classification") and len(loc) == 1:
        return str(loc[0])
    if loc[0] in ("document", "status") and len(loc) == 1:
        return "section"
    return "field"


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# ----------------------------------------------------------------------------- compile
class _Compiler:
    def __init__(self, spec: MappingFileSpec, locs: Locations) -> None:
        self.spec = spec
        self.locs = locs
        self.issues: list[Issue] = []
        self.tables = self._tables()

    def fail(self, loc: Loc, message: str, hint: str = "") -> None:
        self.issues.append(self.locs.issue(loc, message, hint))

    def path(self, text: str, loc: Loc) -> AnyPath | None:
        try:
            if self.spec.record.syntax == "json":
                return parse_json_path(text)
            return parse_xml_path(text, self.spec.record.namespaces)
        except PathSyntaxError as exc:
            kind = "JSON path" if self.spec.record.syntax == "json" else "XML path"
            self.fail(loc, f"bad {kind} {text!r}: {exc}",
                      "write a dotted path or JSON pointer" if kind == "JSON path"
                      else "write child element names separated by '/', optionally ending "
                           "in @attribute")
            return None

    def _tables(self) -> dict[str, CodeTable]:
        tables = dict(BUILTIN_TABLES)
        for name, rows in self.spec.tables.items():
            base = tables.get(name, CodeTable(name, ()))
            tables[name] = base.extended(rows)
        return tables

    def compile(self) -> CompiledMapping:
        spec = self.spec
        if spec.record.syntax == "json" and spec.record.namespaces:
            self.fail(("record", "namespaces"), "namespaces apply to XML records only",
                      "remove record.namespaces or set syntax: xml")
        id_path = self.path(spec.record.id, ("record", "id"))
        classification = self._classification()
        document = self._section("document", spec.document, tg.DOCUMENT_TARGETS,
                                 tg.DOCUMENT_REQUIRED)
        status = (self._section("status", spec.status, tg.STATUS_TARGETS, tg.STATUS_REQUIRED)
                  if spec.status is not None else None)
        if self.issues or id_path is None or classification is None:
            raise MappingFileError(self.issues or [self.locs.issue((), "invalid mapping")])
        return CompiledMapping(
            name=spec.name, source=self.locs.file, description=spec.description,
            syntax=spec.record.syntax, namespaces=dict(spec.record.namespaces), id_path=id_path,
            classification=classification, tables=self.tables, document=document,
            status=status,
        )

    def _classification(self) -> CompiledClassification | None:
        c = self.spec.classification
        loc: Loc = ("classification",)
        if (c.field is None) == (c.never_secret is None):
            self.fail(loc, "say either 'field:' (where the record holds độ mật) or "
                      "'never_secret:' (why this source can never carry secret documents)"
                      if c.field is None else "'field' and 'never_secret' exclude each other",
                      "records are refused unless the gate knows where độ mật is (rules R2)")
            return None
        if c.never_secret is not None and len(c.never_secret.strip()) < 10:
            self.fail((*loc, "never_secret"), "never_secret must state why, in a sentence",
                      "e.g. never_secret: 'the public-services portal only holds ordinary "
                      "documents'")
        values: dict[str, gate.Classification] = {}
        for local, cls_name in c.values.items():
            cls = gate.Classification(cls_name)
            if not cls.secret and gate.is_declared_secret(local):
                self.fail((*loc, "values", local),
                          f"{local!r} means a secret class and cannot be declared not-secret",
                          "remove it: secret spellings are always refused")
            values[local] = cls
        path = self.path(c.field, (*loc, "field")) if c.field is not None else None
        also = [self.path(text, (*loc, "also", i)) for i, text in enumerate(c.also)]
        if c.also and c.field is None:
            self.fail((*loc, "also"), "'also' adds places to 'field'; give 'field' first",
                      "e.g. field: DoMat, also: [DoMat/@Ma]")
        return CompiledClassification(path, c.field or "", values, c.absent_means_public,
                                      c.never_secret, tuple(p for p in also if p is not None))

    def _section(self, name: str, section: SectionSpec, known: dict[str, tg.Target],
                 required: tuple[tuple[str, ...], ...]) -> CompiledSection:
        loc: Loc = (name,)
        xml = self.spec.record.syntax == "xml"
        if xml and not section.root:
            self.fail(loc, f"{name}.root is required for XML records",
                      "give the root element name the reverse direction writes, e.g. root: VanBan")
        if not xml and section.root:
            self.fail((*loc, "root"), "root applies to XML records only", "remove it")
        fields = self._fields(section.fields, known, (*loc, "fields"))
        for alternatives in required:
            if not any(a in section.fields for a in alternatives):
                target = known[alternatives[-1]]
                either = " or ".join(repr(a) for a in alternatives)
                self.fail((*loc, "fields"),
                          f"the required edXML field {either} is not mapped ({target.help})",
                          "map it from a record field (path:) or give it a const:")
        constant_paths = []
        for key, value in section.constants.items():
            path = self.path(key, (*loc, "constants", key))
            if path is not None:
                constant_paths.append((path, value))
        return CompiledSection(section.root, dict(section.constants), fields,
                               tuple(constant_paths))

    def _fields(self, specs: dict[str, FieldSpec], known: dict[str, tg.Target],
                loc: Loc) -> dict[str, CompiledField]:
        out: dict[str, CompiledField] = {}
        for name, spec in specs.items():
            target = known.get(name)
            if target is None:
                self.fail((*loc, name), f"{name!r} is not an edXML field this section can map",
                          f"known: {', '.join(known)}{_suggest(name, known)}")
                continue
            compiled = self._field(target, spec, (*loc, name))
            if compiled is not None:
                out[name] = compiled
        return out

    def _field(self, target: tg.Target, spec: FieldSpec, loc: Loc) -> CompiledField | None:
        ok = len(self.issues)
        has_const = "const" in spec.model_fields_set
        if spec.path is None and not has_const and "default" not in spec.model_fields_set:
            self.fail(loc, f"{target.name}: no path, const or default", "say where the value "
                      "comes from (path:), or give a const:")
        if spec.path is not None and has_const:
            self.fail((*loc, "const"), "path and const exclude each other", "keep one")
        if target.reverse_only and spec.path is None:
            self.fail(loc, f"{target.name} is written by the reverse direction only and needs "
                      "a path", "give it a path:")
        path = self.path(spec.path, (*loc, "path")) if spec.path is not None else None
        item = None
        if spec.item is not None:
            if not target.many or target.kind is tg.Kind.GROUP:
                self.fail((*loc, "item"), f"item applies to list fields only, not "
                          f"{target.name}", "remove it, or put the sub-path in path")
            else:
                item = self.path(spec.item, (*loc, "item"))
        transforms = []
        for i, text in enumerate(spec.transform):
            try:
                transforms.append(compile_transform(text, self.tables))
            except TransformSpecError as exc:
                self.fail((*loc, "transform", i), str(exc), "fix the transform name")
        last = transforms[-1] if transforms else None
        if last is not None and last.table is not None and target.kind not in (
                tg.Kind.ORG, tg.Kind.ORG_ID, tg.Kind.GROUP):
            from connector.mapping.values import matches_table_value

            wrong = [w for w, _ in last.table.entries if not matches_table_value(target, w)]
            if wrong:
                self.fail((*loc, "transform"), f"code table {last.table.name!r} gives "
                          f"{', '.join(map(repr, wrong))}, not valid for {target.name} "
                          f"({target.help})", "use the table made for this field, or fix its "
                          "wire values under tables:")
        sub: dict[str, CompiledField] = {}
        if target.kind is tg.Kind.GROUP:
            if spec.fields is None or spec.path is None:
                self.fail(loc, f"{target.name} is a group: it needs path: (where the "
                          f"{'list' if target.many else 'object'} is) and fields:",
                          f"sub-fields: {', '.join(target.subtargets)}")
            else:
                sub = self._fields(spec.fields, target.subtargets, (*loc, "fields"))
                self._group_rules(target, spec.fields, (*loc, "fields"))
        elif spec.fields is not None:
            self.fail((*loc, "fields"), f"{target.name} is a single field; fields: applies "
                      "to groups only", "remove fields:")
        compiled = CompiledField(target, loc, path, item, spec.const, has_const, spec.default,
                                 spec.required, tuple(transforms), sub)
        for key in ("const", "default"):
            value = getattr(spec, key)
            if key in spec.model_fields_set and value is not None and len(self.issues) == ok:
                self._check_constant(compiled, value, (*loc, key))
        return compiled if len(self.issues) == ok else None

    def _group_rules(self, target: tg.Target, fields: dict[str, FieldSpec], loc: Loc) -> None:
        if target.subtargets is tg.DOCUMENT_TARGETS["attachments"].subtargets:
            if "name" not in fields:
                self.fail(loc, f"{target.name} needs a 'name' field (the file name)", "map it")
            if "data" not in fields and "file" not in fields:
                self.fail(loc, f"{target.name} needs 'data' (inline base64) or 'file' (a file "
                          "in the attachments spool directory)", "map one or both")

    def _check_constant(self, compiled: CompiledField, value: Any, loc: Loc) -> None:
        from connector.mapping.values import ValueProblem, convert, run_transforms

        try:
            converted = run_transforms(compiled, value)
            convert(compiled.target, converted, directory=None)
        except ValueProblem as exc:
            self.fail(loc, f"{compiled.target.name}: {exc}", "fix the constant")


def compile_mapping(path: Path, text: str | None = None) -> CompiledMapping:
    """Read, check and compile one mapping file, or raise MappingFileError."""
    data, locs = load_located(path, text)
    if not isinstance(data, dict):
        raise MappingFileError([locs.issue((), "a mapping file is a YAML mapping of keys",
                                           "see mappings/README.md")])
    try:
        spec = MappingFileSpec.model_validate(data)
    except ValidationError as exc:
        raise MappingFileError([_pydantic_issue(locs, e) for e in exc.errors()]) from None
    return _Compiler(spec, locs).compile()
