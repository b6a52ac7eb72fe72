"""Local record -> edXML model: read every mapped field, then assemble the package.

``read_section`` walks a compiled section over a parsed record and returns the target
values, collecting *every* problem (so an operator fixes a record in one go).
``assemble_edoc`` / ``assemble_status`` turn those values into the immutable model objects,
checking what spans fields (DocumentId composition, future dates, business types, the files).
Bounds (``RecordLimits``) hold while reading: the record's size before parsing, duplicate
JSON keys refused (a second "do_mat" must never win over the first), one text value's
length, the number of files, each file's size before it is read.
The classification gate runs before this module is called; it must not do I/O other than
reading claim-check files, and must not build XML.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from connector.edxml.model import (
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    EdocPackage,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    TraceHeader,
    compose_document_id,
)
from connector.local.base import RecordLimits
from connector.mapping import files
from connector.mapping import targets as tg
from connector.mapping.directory import Directory
from connector.mapping.paths import (
    MISSING,
    JsonPath,
    RecordSyntaxError,
    XmlPath,
    parse_xml_record,
)
from connector.mapping.spec import CompiledField, CompiledMapping, CompiledSection
from connector.mapping.values import ValueProblem, blank, convert, run_transforms


# ----------------------------------------------------------------------------- sources
class Source:
    """One context in a parsed record: the whole record, or one item of a list."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def values(self, path: JsonPath | XmlPath) -> list[Any]:
        if isinstance(path, XmlPath):
            return path.get_all(self.node)
        found = path.get(self.node)
        if found is MISSING:
            return []
        return list(found) if isinstance(found, list) else [found]

    def children(self, path: JsonPath | XmlPath) -> list[Source]:
        if isinstance(path, XmlPath):
            return [Source(e) for e in path.elements(self.node)]
        found = path.get(self.node)
        if found is MISSING or found is None:
            return []
        return [Source(x) for x in (found if isinstance(found, list) else [found])]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different; readers disagree on a repeated key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise RecordSyntaxError(f"the JSON record repeats the key {shown!r} in one object; "
                                    "readers disagree on which one counts, so it is refused")
        out[key] = value
    return out


def parse_record(mapping: CompiledMapping, body: bytes, root: str | None,
                 limits: RecordLimits | None = None) -> Source:
    """Parse record bytes per the mapping's syntax (JSON, or XML with the hardened parser)."""
    limit = (limits or RecordLimits()).max_record_bytes
    if len(body) > limit:
        raise RecordSyntaxError(f"the record is {len(body)} bytes, over the {limit}-byte "
                                "limit for records (local.limits.max_record_bytes)")
    if mapping.syntax == "xml":
        element = parse_xml_record(body, limit=limit)
        if root is not None and etree.QName(element).localname != root.split(":")[-1]:
            raise RecordSyntaxError(f"the XML record's root element is "
                                    f"<{etree.QName(element).localname}>, expected <{root}> "
                                    f"(mapping {mapping.name!r})")
        return Source(element)
    try:
        data = json.loads(body.decode("utf-8-sig"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordSyntaxError(f"the record is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise RecordSyntaxError("the JSON record nests too deeply to be read") from None
    if not isinstance(data, dict):
        raise RecordSyntaxError("a JSON record must be an object ({...})")
    return Source(data)


def record_id_of(mapping: CompiledMapping, source: Source) -> str:
    found = [v for v in source.values(mapping.id_path) if not blank(v)]
    return str(found[0]).strip() if found else ""


# ----------------------------------------------------------------------------- reading
def read_section(section: CompiledSection, source: Source, directory: Directory,
                 problems: list[str], limits: RecordLimits | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    bounds = limits or RecordLimits()
    for name, field in section.fields.items():
        if field.target.reverse_only:
            continue
        values[name] = _read_field(field, source, directory, problems, prefix="",
                                   limits=bounds)
    return values


def _read_field(field: CompiledField, source: Source, directory: Directory,
                problems: list[str], prefix: str, limits: RecordLimits) -> Any:
    target = field.target
    label = prefix + field.where
    if target.kind is tg.Kind.GROUP:
        items = source.children(field.path) if field.path is not None else []
        if target.name == "attachments" and len(items) > limits.max_attachments:
            problems.append(f"{label}: {len(items)} files, over the limit of "
                            f"{limits.max_attachments} (local.limits.max_attachments)")
            return []
        groups = []
        for i, item in enumerate(items):
            sub_prefix = f"{label}[{i}]." if target.many else f"{label}."
            groups.append({name: _read_field(sub, item, directory, problems, sub_prefix, limits)
                           for name, sub in field.fields.items()})
        if field.required and not groups:
            problems.append(f"{label}: required, but the record has none")
        return groups if target.many else (groups[0] if groups else None)
    raw = _raw_values(field, source)
    if not raw and not blank(field.default):
        raw = [field.default]
    if not raw:
        if field.required:
            problems.append(f"{label}: required, but the record has no value")
        return [] if target.many else None
    if not target.many and len(raw) > 1:
        problems.append(f"{label}: the path matches {len(raw)} values, one expected")
        return None
    if target.name != "data":  # inline file data is bounded by the file size limit instead
        longest = max((len(v) for v in raw if isinstance(v, str)), default=0)
        if longest > limits.max_text_chars:
            problems.append(f"{label}: a value of {longest} characters, over the limit of "
                            f"{limits.max_text_chars} (local.limits.max_text_chars)")
            return [] if target.many else None
    out = []
    for value in raw:
        try:
            out.append(convert(target, run_transforms(field, value), directory))
        except ValueProblem as exc:
            problems.append(f"{label}: {exc}")
            return [] if target.many else None
    return out if target.many else out[0]


def _raw_values(field: CompiledField, source: Source) -> list[Any]:
    if field.has_const:
        return [] if blank(field.const) else [field.const]
    if field.path is None:
        return []
    if field.item is not None:
        found = [v for child in source.children(field.path) for v in child.values(field.item)]
    else:
        found = source.values(field.path)
    return [v for v in found if not blank(v)]


# ----------------------------------------------------------------------------- assembling
def _staff(values: Mapping[str, Any]) -> StaffInfo | None:
    staff = StaffInfo(department=values.get("staff_department"), staff=values.get("staff_name"),
                      email=values.get("staff_email"), mobile=values.get("staff_mobile"))
    return staff if any((staff.department, staff.staff, staff.email, staff.mobile)) else None


def _file(group: Mapping[str, Any], index: int, spool: Path | None, label: str,
          problems: list[str], limit: int = files.MAX_FILE_BYTES) -> Attachment | None:
    name = group.get("name")
    if not name:
        problems.append(f"{label}: the file has no name")
        return None
    has_data, has_file = bool(group.get("data")), bool(group.get("file"))
    if has_data == has_file:
        problems.append(f"{label}: give the file either inline (data) or as a reference "
                        "(file), exactly one")
        return None
    try:
        clean = files.check_name(name)
        data = (files.decode_inline(group["data"], limit=limit) if has_data
                else files.read_claim_check(group["file"], spool, limit=limit))
        content_type = files.content_type_for(clean, group.get("content_type"))
        files.check_magic(data, content_type)
    except ValueProblem as exc:
        problems.append(f"{label}: {exc}")
        return None
    return Attachment(content_id=str(index), name=clean, content_type=content_type, data=data,
                      description=group.get("description") or clean)


def assemble_edoc(values: Mapping[str, Any], *, spool: Path | None, now: dt.datetime,
                  problems: list[str], limits: RecordLimits | None = None) -> EdocPackage | None:
    file_limit = (limits or RecordLimits()).max_file_bytes
    number, notation = values.get("code_number"), values.get("code_notation")
    if values.get("code"):
        left, sep, right = str(values["code"]).partition("/")
        number, notation = number or left.strip(), notation or right.strip()
        if not sep:
            problems.append("code: số/ký hiệu must look like '15/SNV-VP'")
    for name, value, limit in (("code_number", number, 11), ("code_notation", notation, 30)):
        if not value:
            problems.append(f"{name}: required, but the record has no value")
        elif len(value) > limit:
            problems.append(f"{name}: is {len(value)} characters long; edXML allows {limit}")
    date = values.get("promulgation_date")
    if isinstance(date, dt.date) and date > now.date():
        problems.append(f"promulgation_date: {date:%Y/%m/%d} is in the future")
    business_type = values.get("business_doc_type") or BusinessDocType.NEW
    main = values.get("main_document")
    attachments: list[Attachment] = []
    if main:
        found = _file(main, 1, spool, "main_document", problems, file_limit)
        if found is not None:
            attachments.append(found)
    elif business_type is not BusinessDocType.REVOKE:
        problems.append("main_document: the record has no main document file")
    for i, group in enumerate(values.get("attachments") or []):
        found = _file(group, len(attachments) + 1, spool, f"attachments[{i}]", problems,
                      file_limit)
        if found is not None:
            attachments.append(found)
    replacements = tuple(ReplacementInfo(r["document_id"], tuple(r.get("organ_ids") or ()))
                         for r in values.get("replacements") or () if r.get("document_id"))
    if business_type is BusinessDocType.REPLACE and not replacements:
        problems.append("replacements: a replacement (business_doc_type 3) must name the "
                        "documents it replaces")
    from_ = values.get("from")
    if problems or not isinstance(from_, Organization) or not isinstance(date, dt.date):
        return None
    code = Code(str(number), str(notation))
    receivers = tuple(Receiver(r["organ_id"], r["receiver_type"])
                      for r in values.get("receivers") or () if r.get("organ_id")
                      and r.get("receiver_type") is not None)
    info = None
    if receivers or values.get("document_info") or values.get("document_receiver"):
        info = BusinessDocumentInfo(values.get("document_info"),
                                    values.get("document_receiver"), receivers)
    signer = SignerInfo(values.get("signer_competence"), values.get("signer_position"),
                        values.get("signer_full_name"))
    return EdocPackage(
        from_=from_,
        to=tuple(values.get("to") or ()),
        document_id=values.get("document_id") or compose_document_id(from_.organ_id, date, code),
        code=code,
        promulgation_info=PromulgationInfo(values.get("place"), date),
        document_type=DocumentType(values.get("type") or 1, values["type_name"],
                                   values.get("type_detail")),
        subject=values["subject"],
        content=values.get("content"),
        signer_info=signer if any((signer.competence, signer.position, signer.full_name))
        else None,
        due_date=values.get("due_date"),
        other_info=OtherInfo(
            priority=values.get("priority") or Priority.NORMAL,
            sphere_of_promulgation=values.get("sphere_of_promulgation"),
            typer_notation=values.get("typer_notation"),
            promulgation_amount=values.get("promulgation_amount"),
            page_amount=values.get("page_amount"),
            direction=bool(values.get("direction")),
            appendixes=tuple(values.get("appendixes") or ()),
        ),
        response_for=tuple(
            ResponseFor(r.get("organ_id"), r.get("code"), r.get("document_id"),
                        r.get("promulgation_date"))
            for r in values.get("response_for") or ()
            if any(v is not None for v in r.values())
        ),
        steering_type=values.get("steering_type"),
        to_places=tuple(values.get("to_places") or ()),
        trace_headers=(TraceHeader(from_.organ_id, now),),
        business=Business(
            business_doc_type=business_type,
            document_id=values.get("business_document_id"),
            business_doc_reason=values.get("business_doc_reason"),
            paper=values.get("paper"),
            staff_info=_staff(values),
            business_document_info=info,
            replacement_info=replacements,
        ),
        attachments=tuple(attachments),
    )


def assemble_status(values: Mapping[str, Any], *, own: Organization | None, now: dt.datetime,
                    problems: list[str]) -> StatusPackage | None:
    code = values.get("status_code")
    reporter = values.get("from") or own
    if code is StatusCode.ARRIVED:
        problems.append("status_code: 01 (Đã đến) is sent by the connector itself when a "
                        "document arrives; the local side sends 02-06, 13, 15 or 16")
    if not isinstance(reporter, Organization):
        problems.append("from: no reporting organisation (map 'from' or configure the "
                        "agency's own OrganId)")
    sender = values.get("document_sender")
    if isinstance(reporter, Organization) and sender and isinstance(code, StatusCode):
        if code is StatusCode.RECALL_REQUEST and sender != reporter.organ_id:
            problems.append("status_code: 13 (Lấy lại) is sent by the document's original "
                            f"sender {sender}, not by {reporter.organ_id}")
        if code.sent_by_receiver and code is not StatusCode.ARRIVED \
                and sender == reporter.organ_id:
            problems.append(f"status_code: {code.value} is sent by a receiver, but "
                            f"{reporter.organ_id} sent the document itself")
    if problems or not isinstance(code, StatusCode) or not isinstance(reporter, Organization):
        return None
    return StatusPackage(
        from_=reporter,
        response_for=ResponseFor(sender, values.get("document_code"), values.get("document_id"),
                                 values.get("document_promulgation_date")),
        status_code=code,
        timestamp=values.get("timestamp") or now,
        staff_info=_staff(values),
        description=values.get("description"),
    )
