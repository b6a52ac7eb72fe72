"""The API the daemon calls: loaded mapping files, one per local format, plus the directory.

    mappings = load_mappings(Path("mappings"), Path("config/directory.yaml"))
    fmt = mappings.get(record.mapping)                      # None -> the default format
    pkg = fmt.record_to_package(record, attachments_dir=spool)   # gate first, then map
    status = fmt.command_to_status(command, own=our_organisation)
    local = fmt.package_to_record(received_edoc)            # LocalDocument(body, type, files)
    event = fmt.status_to_event(received_status)            # LocalDocument

Every method is pure apart from reading claim-check files: no network, no package XML (the
edXML builder and parser do that). Errors: ``ClassificationRefused`` (reason
``secret_document`` / ``classification_unknown`` / ``classification_missing``),
``RecordError`` (``record_invalid``), ``RecordSyntaxError`` (``record_malformed``) — all
``PermanentError``; ``MappingFileError`` (a ``ConfigurationError``) when loading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connector.edxml.model import EdocPackage, Organization, StatusPackage
from connector.errors import ConfigurationError
from connector.local.base import LocalRecord, RecordLimits
from connector.mapping import classification as gate
from connector.mapping import forward
from connector.mapping.directory import Directory, load_directory
from connector.mapping.reverse import LocalDocument, edoc_to_record, status_to_record
from connector.mapping.spec import CompiledMapping, CompiledSection, compile_mapping
from connector.mapping.values import RecordError, blank
from connector.mapping.yamlsource import Issue, MappingFileError
from connector.timeutil import now_vn


@dataclass(frozen=True)
class LocalFormat:
    """One local record format: a compiled mapping file bound to the directory."""

    compiled: CompiledMapping
    directory: Directory

    @property
    def name(self) -> str:
        return self.compiled.name

    @property
    def content_type(self) -> str:
        return "application/xml" if self.compiled.syntax == "xml" else "application/json"

    def _parse(self, record: LocalRecord | bytes, root: str | None,
               limits: RecordLimits | None = None) -> tuple[forward.Source, str]:
        body = record.body if isinstance(record, LocalRecord) else record
        source = forward.parse_record(self.compiled, body, root, limits)
        given = record.record_id if isinstance(record, LocalRecord) else ""
        return source, given or forward.record_id_of(self.compiled, source)

    def record_id(self, body: bytes) -> str:
        """The local record id (the outbound idempotency key) read from the record itself."""
        source = forward.parse_record(self.compiled, body, None)
        return forward.record_id_of(self.compiled, source)

    def classify(self, record: LocalRecord | bytes) -> gate.Classification:
        """Run only the security gate (rules R2): returns PUBLIC or raises ClassificationRefused."""
        source, record_id = self._parse(record, self.compiled.document.root)
        return self._gate(source, record_id)

    def _gate(self, source: forward.Source, record_id: str) -> gate.Classification:
        c = self.compiled.classification
        if c.path is None:
            return gate.Classification.PUBLIC  # the mapping states: never secret (never_secret)
        found = source.values(c.path)
        extra = [v for path in c.also for v in source.values(path)]
        if not any(not blank(v) for v in extra) and gate.hidden_value(source.node, c.path):
            raise gate.ClassificationRefused(
                f"record {record_id!r} refused: the classification element {c.field!r} has no "
                "text but carries attributes or child elements the mapping does not read; the "
                "connector cannot tell its độ mật (rules R2). Name the attribute under "
                "classification.also in the mapping",
                reason=gate.UNKNOWN_REASON, field=c.field, classification=None)
        found = [*found, *(v for v in extra if not blank(v))]
        if len(found) > 1:
            found = [next((v for v in found if gate.classify(v, c.values) != gate.
                           Classification.PUBLIC), found[0])]
        return gate.check(found[0] if found else None, field=c.field, record_id=record_id,
                          present=bool(found), extra=c.values,
                          absent_means_public=c.absent_means_public)

    def record_to_package(self, record: LocalRecord | bytes, *,
                          attachments_dir: Path | None = None,
                          now: dt.datetime | None = None,
                          limits: RecordLimits | None = None) -> EdocPackage:
        """Gate, then map a document record to an EdocPackage (with one TraceHeader: us, now)."""
        source, record_id = self._parse(record, self.compiled.document.root, limits)
        self._gate(source, record_id)
        problems: list[str] = []
        values = forward.read_section(self.compiled.document, source, self.directory, problems,
                                      limits)
        pkg = forward.assemble_edoc(values, spool=attachments_dir, now=now or now_vn(),
                                    problems=problems, limits=limits)
        if pkg is None:
            raise RecordError(problems or ["the record could not be mapped"],
                              record_id=record_id, mapping=self.name)
        return pkg

    def command_to_status(self, command: LocalRecord | bytes, *, own: Organization | None = None,
                          now: dt.datetime | None = None,
                          limits: RecordLimits | None = None) -> StatusPackage:
        """Map a local workflow command (02-06, 13, 15, 16) to a StatusPackage from ``own``."""
        section = self._status_section()
        source, record_id = self._parse(command, section.root, limits)
        problems: list[str] = []
        values = forward.read_section(section, source, self.directory, problems, limits)
        pkg = forward.assemble_status(values, own=own, now=now or now_vn(), problems=problems)
        if pkg is None:
            raise RecordError(problems or ["the command could not be mapped"],
                              record_id=record_id, mapping=self.name)
        return pkg

    def package_to_record(self, pkg: EdocPackage) -> LocalDocument:
        """A received document as a local record (+ its files when the format uses files)."""
        return edoc_to_record(self.compiled, self.directory, pkg)

    def status_to_event(self, pkg: StatusPackage) -> LocalDocument:
        """A received status notice as a local event record."""
        self._status_section()
        return status_to_record(self.compiled, self.directory, pkg)

    def _status_section(self) -> CompiledSection:
        if self.compiled.status is None:
            raise ConfigurationError(f"mapping {self.name!r} ({self.compiled.source}) has no "
                                     "status: section; add one to exchange status notices",
                                     reason="mapping_invalid", stage="mapping")
        return self.compiled.status


@dataclass(frozen=True)
class MappingSet:
    """Every local format of a deployment, by name."""

    formats: dict[str, LocalFormat]
    directory: Directory
    default: str | None = None

    def get(self, name: str | None = None) -> LocalFormat:
        """The format called ``name`` (a record's ``mapping``), or the default one."""
        chosen = name or self.default or (next(iter(self.formats)) if len(self.formats) == 1
                                          else None)
        if chosen is None:
            raise ConfigurationError("the record names no mapping and there is no default "
                                     f"among {sorted(self.formats)}", reason="mapping_unknown",
                                     stage="mapping")
        found = self.formats.get(chosen)
        if found is None:
            raise ConfigurationError(f"no mapping named {chosen!r}; loaded: "
                                     f"{', '.join(sorted(self.formats)) or 'none'}",
                                     reason="mapping_unknown", stage="mapping")
        return found

    def __iter__(self) -> Iterator[LocalFormat]:
        return iter(self.formats.values())


def mapping_files(folder: Path) -> list[Path]:
    """The mapping files of a folder (``*.yaml``/``*.yml``, not its subfolders)."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_mappings(folder: Path, directory: Directory | Path, *,
                  default: str | None = None) -> MappingSet:
    """Load and check every mapping file in ``folder``; all problems of all files at once."""
    if not isinstance(directory, Directory):
        directory = load_directory(directory)
    if not folder.is_dir():
        raise MappingFileError([Issue(str(folder), (), None, None, "not a folder",
                                      "point at the folder holding the mapping files")])
    formats: dict[str, LocalFormat] = {}
    issues: list[Issue] = []
    for path in mapping_files(folder):
        try:
            compiled = compile_mapping(path)
        except MappingFileError as exc:
            issues.extend(exc.issues)
            continue
        if compiled.name in formats:
            issues.append(Issue(str(path), ("name",), None, None,
                                f"mapping name {compiled.name!r} is also used by "
                                f"{formats[compiled.name].compiled.source}",
                                "give every mapping file its own name"))
            continue
        formats[compiled.name] = LocalFormat(compiled, directory)
    if issues:
        raise MappingFileError(issues)
    if default is not None and default not in formats:
        raise MappingFileError([Issue(str(folder), (), None, None,
                                      f"the default mapping {default!r} is not among "
                                      f"{sorted(formats)}", "fix the default name")])
    return MappingSet(formats, directory, default)


def load_format(path: Path, directory: Directory | Path) -> LocalFormat:
    """Load one mapping file (for tools and tests)."""
    if not isinstance(directory, Directory):
        directory = load_directory(directory)
    return LocalFormat(compile_mapping(path), directory)
