"""``connector inspect FILE``: a readable summary of an edXML package (edoc or status).

Prints kind, DocumentId, sender and recipients, code, subject, priority, business type,
attachments with sizes, or the status code and its meaning. Only reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connector.edxml.model import EdocPackage, Package, StatusPackage
from connector.edxml.parser import parse_package
from connector.edxml.problems import EdxmlError
from connector.errors import PermanentError

_PRIORITY_NAMES = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc", 4: "Hỏa tốc hẹn giờ"}
_BUSINESS_NAMES = {0: "new", 1: "revoke (thu hồi)", 2: "update (cập nhật)", 3: "replace (thay thế)"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="an edXML file")


def _org(org_id: str, name: str | None) -> str:
    return f"{org_id} ({name})" if name else org_id


def describe(package: Package) -> list[str]:
    lines = [f"kind:        {package.kind}"]
    if isinstance(package, StatusPackage):
        response = package.response_for
        code = package.status_code
        lines += [
            f"DocumentId:  {response.document_id}",
            f"from:        {_org(package.from_.organ_id, package.from_.organ_name)}",
            f"about:       document of {response.organ_id} {response.code or ''}".rstrip(),
            f"status:      {code.value} {code.meaning}",
            f"timestamp:   {package.timestamp.isoformat()}",
        ]
        if package.description:
            lines.append(f"description: {package.description}")
        return lines
    assert isinstance(package, EdocPackage)
    lines += [
        f"DocumentId:  {package.document_id}",
        f"from:        {_org(package.from_.organ_id, package.from_.organ_name)}",
    ]
    lines += [f"to:          {_org(t.organ_id, t.organ_name)}" for t in package.to]
    priority = int(package.other_info.priority)
    lines += [
        f"code:        {package.code}",
        f"date:        {package.promulgation_info.promulgation_date.isoformat()}",
        f"type:        {package.document_type.type_name}",
        f"subject:     {package.subject}",
        f"priority:    {priority} {_PRIORITY_NAMES.get(priority, '')}",
        f"business:    {_BUSINESS_NAMES[int(package.business_doc_type)]}",
    ]
    for response in package.response_for:
        lines.append(f"responds to: {response.document_id or response.code}")
    if package.legacy_signature is not None:
        lines.append("signature:   legacy placeholder (QCVN namespace, not verifiable)")
    lines.append(f"attachments: {len(package.attachments)}")
    for item in package.attachments:
        size = f"{len(item.data)} bytes"
        lines.append(f"  cid:{item.content_id}  {item.name}  {item.content_type}  {size}")
    return lines


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"connector inspect: {args.file}: no such file", file=sys.stderr)
        return 2
    try:
        package = parse_package(path.read_bytes())
    except EdxmlError as exc:
        print(f"{args.file}: cannot be read as edXML:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except PermanentError as exc:
        print(f"{args.file}: {exc.message}", file=sys.stderr)
        return 1
    print("\n".join(describe(package)))
    return 0
