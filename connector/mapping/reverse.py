"""edXML model -> local record, from the same mapping file read backwards.

Every mapped path is written with the model's value, run through the field's transforms
inverted (dates formatted back, codes to the table's first local spelling, OrganIds to local
codes). Constants of the section are written first (record-kind markers). Files go out as
claim checks when the mapping has a ``file`` sub-field (bytes returned beside the record),
else inline base64. Values with no path, and ``const`` fields, are not written. This module
must not parse XML packages or do I/O.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from lxml import etree

from connector.edxml.model import EdocPackage, StatusPackage
from connector.mapping import files
from connector.mapping import targets as tg
from connector.mapping.classification import Classification
from connector.mapping.directory import Directory
from connector.mapping.paths import JsonPath, XmlPath
from connector.mapping.spec import CompiledField, CompiledMapping, CompiledSection
from connector.mapping.values import reverse_transforms, to_local, wire_text


@dataclass(frozen=True)
class LocalDocument:
    """A record for the local side: its bytes, their media type, and files to put beside it."""

    body: bytes
    content_type: str
    files: tuple[tuple[str, bytes], ...] = ()


# ----------------------------------------------------------------------------- model getters
def _file_group(att: Any, local_name: str) -> dict[str, Any]:
    return {"name": att.name, "content_type": att.content_type, "description": att.description,
            "data": att.data, "file": local_name}


def _edoc_values(pkg: EdocPackage) -> dict[str, Any]:
    # The AttachmentName is kept as sent; the file handed over gets a safe, unique name.
    local_names = files.local_file_names([a.name for a in pkg.attachments])
    groups = [_file_group(a, n) for a, n in zip(pkg.attachments, local_names, strict=True)]
    signer, other, business = pkg.signer_info, pkg.other_info, pkg.business
    staff = business.staff_info if business else None
    info = business.business_document_info if business else None
    return {
        "from": pkg.from_, "from_name": pkg.from_.organ_name, "to": list(pkg.to),
        "document_id": pkg.document_id, "code": str(pkg.code),
        "code_number": pkg.code.code_number, "code_notation": pkg.code.code_notation,
        "place": pkg.promulgation_info.place,
        "promulgation_date": pkg.promulgation_info.promulgation_date,
        "type": pkg.document_type.type, "type_name": pkg.document_type.type_name,
        "type_detail": pkg.document_type.type_detail, "subject": pkg.subject,
        "content": pkg.content,
        "signer_competence": signer.competence if signer else None,
        "signer_position": signer.position if signer else None,
        "signer_full_name": signer.full_name if signer else None,
        "due_date": pkg.due_date, "priority": other.priority,
        "sphere_of_promulgation": other.sphere_of_promulgation,
        "typer_notation": other.typer_notation,
        "promulgation_amount": other.promulgation_amount, "page_amount": other.page_amount,
        "direction": other.direction, "appendixes": list(other.appendixes),
        "steering_type": pkg.steering_type, "to_places": list(pkg.to_places),
        "business_doc_type": pkg.business_doc_type,
        "business_document_id": business.document_id if business else None,
        "business_doc_reason": business.business_doc_reason if business else None,
        "paper": business.paper if business else None,
        "staff_department": staff.department if staff else None,
        "staff_name": staff.staff if staff else None,
        "staff_email": staff.email if staff else None,
        "staff_mobile": staff.mobile if staff else None,
        "document_info": info.document_info if info else None,
        "document_receiver": info.document_receiver if info else None,
        "response_for": [
            {"organ_id": r.organ_id, "code": r.code, "document_id": r.document_id,
             "promulgation_date": r.promulgation_date}
            for r in pkg.response_for if not r.is_empty
        ],
        "receivers": [{"organ_id": r.organ_id, "receiver_type": r.receiver_type}
                      for r in (info.receivers if info else ())],
        "replacements": [{"document_id": r.document_id, "organ_ids": list(r.organ_ids)}
                         for r in (business.replacement_info if business else ())],
        "main_document": groups[0] if groups else None,
        "attachments": groups[1:],
    }


def _status_values(pkg: StatusPackage) -> dict[str, Any]:
    staff, rf = pkg.staff_info, pkg.response_for
    return {
        "status_code": pkg.status_code, "status_meaning": pkg.status_code.meaning,
        "from": pkg.from_, "from_name": pkg.from_.organ_name,
        "document_id": rf.document_id, "document_sender": rf.organ_id,
        "document_code": rf.code, "document_promulgation_date": rf.promulgation_date,
        "staff_department": staff.department if staff else None,
        "staff_name": staff.staff if staff else None,
        "staff_email": staff.email if staff else None,
        "staff_mobile": staff.mobile if staff else None,
        "description": pkg.description, "timestamp": pkg.timestamp,
    }


# ----------------------------------------------------------------------------- writers
class _Writer:
    """Writes values at paths into a JSON object or under an XML element."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def put(self, path: JsonPath | XmlPath, values: list[Any], many: bool) -> None:
        if isinstance(path, XmlPath):
            path.write(self.node, [_xml_text(v) for v in values], many)
        else:
            path.set(self.node, [_json_value(v) for v in values] if many
                     else _json_value(values[0]))

    def new_children(self, path: JsonPath | XmlPath, count: int, many: bool) -> list[_Writer]:
        if isinstance(path, XmlPath):
            return [_Writer(path.write(self.node, None)[0]) for _ in range(count)]
        items: list[dict[str, Any]] = [{} for _ in range(count)]
        path.set(self.node, items if many else items[0])
        return [_Writer(i) for i in items]


def _json_value(value: Any) -> Any:
    value = wire_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _xml_text(value: Any) -> str:
    value = _json_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Reverser:
    def __init__(self, mapping: CompiledMapping, directory: Directory) -> None:
        self.mapping = mapping
        self.directory = directory
        self.files: list[tuple[str, bytes]] = []

    def section(self, section: CompiledSection, values: dict[str, Any], writer: _Writer) -> None:
        for path, constant in section.constant_paths:
            writer.put(path, [constant], many=False)
        self.fields(section.fields, values, writer)

    def fields(self, fields: dict[str, CompiledField], values: dict[str, Any],
               writer: _Writer) -> None:
        for name, field in fields.items():
            if field.path is None or field.has_const:
                continue
            value = values.get(name)
            if field.target.kind is tg.Kind.GROUP:
                self.group(field, value, writer)
                continue
            items = value if field.target.many else [value]
            local = [self.local(field, v) for v in items or [] if v is not None]
            local = [v for v in local if v is not None and v != ""]
            if not local:
                continue
            if field.item is not None:
                for child, v in zip(writer.new_children(field.path, len(local), True), local,
                                    strict=True):
                    child.put(field.item, [v], many=False)
            else:
                writer.put(field.path, local, field.target.many)

    def group(self, field: CompiledField, value: Any, writer: _Writer) -> None:
        assert field.path is not None
        groups = [g for g in (value if field.target.many else [value]) if g]
        if not groups:
            return
        is_file_group = field.target.subtargets is tg.DOCUMENT_TARGETS["attachments"].subtargets
        for child, group in zip(writer.new_children(field.path, len(groups),
                                                    field.target.many), groups, strict=True):
            if is_file_group:
                group = self.file_values(field, group)
            self.fields(field.fields, group, child)

    def file_values(self, field: CompiledField, group: dict[str, Any]) -> dict[str, Any]:
        out = dict(group)
        if "file" in field.fields:
            out.pop("data")
            self.files.append((group["file"], group["data"]))
        else:
            out.pop("file")
        return out

    def local(self, field: CompiledField, value: Any) -> Any:
        return reverse_transforms(field, to_local(field.target, value, self.directory))


def _serialise(mapping: CompiledMapping, root: Any) -> tuple[bytes, str]:
    if mapping.syntax == "xml":
        body = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        return body, "application/xml"
    text = json.dumps(root, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    return text.encode("utf-8"), "application/json"


def _new_root(mapping: CompiledMapping, section: CompiledSection) -> Any:
    if mapping.syntax == "json":
        return {}
    assert section.root is not None
    prefix, _, local = section.root.rpartition(":")
    namespace = mapping.namespaces.get(prefix or "", None)
    nsmap = {(k or None): v for k, v in mapping.namespaces.items()}
    tag = f"{{{namespace}}}{local}" if namespace else local
    return etree.Element(tag, nsmap=nsmap or None)


def _render(mapping: CompiledMapping, directory: Directory, section: CompiledSection,
            values: dict[str, Any], classification: bool = False) -> LocalDocument:
    reverser = _Reverser(mapping, directory)
    root = _new_root(mapping, section)
    writer = _Writer(root)
    if classification and mapping.classification.path is not None:
        # Documents from the interconnect are never state secrets (R2): say so explicitly.
        writer.put(mapping.classification.path, [public_spelling(mapping)], many=False)
    reverser.section(section, values, writer)
    body, content_type = _serialise(mapping, root)
    return LocalDocument(body, content_type, tuple(reverser.files))


def edoc_to_record(mapping: CompiledMapping, directory: Directory,
                   pkg: EdocPackage) -> LocalDocument:
    return _render(mapping, directory, mapping.document, _edoc_values(pkg),
                   classification=True)


def public_spelling(mapping: CompiledMapping) -> str:
    """How the local format writes "not classified": its own code if it has one."""
    for local, cls in mapping.classification.values.items():
        if cls is Classification.PUBLIC:
            return local
    return "Thường"


def status_to_record(mapping: CompiledMapping, directory: Directory,
                     pkg: StatusPackage) -> LocalDocument:
    if mapping.status is None:
        raise ValueError(f"mapping {mapping.name!r} has no status section")
    return _render(mapping, directory, mapping.status, _status_values(pkg))
