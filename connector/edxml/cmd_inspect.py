"""``connector inspect FILE``: a readable summary of an edXML package (edoc or status).

Prints kind, DocumentId, sender and recipients, code, subject, priority, business type,
attachments with sizes, or the status code and its meaning; then the warnings of the receive
level (it reads everything the connector would receive). Only reads.
"""

from __future__ import annotations

import argparse
import sys

from connector.edxml.inputfile import InputFileError, read_package_file
from connector.edxml.model import EdocPackage, Package, StatusPackage
from connector.edxml.schema import check_package

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
            f"timestamp:   {package.timestamp.isoformat() if package.timestamp else '(none)'}",
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
        f"type:        {package.document_type.type_name or '(none)'}",
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
    try:
        data = read_package_file(args.file)
    except InputFileError as exc:
        print(f"connector inspect: {exc}", file=sys.stderr)
        return 2
    result = check_package(data)
    if not result.ok or result.package is None:
        print(f"{args.file}: would be refused on receipt:", file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    lines = describe(result.package)
    if result.warnings:
        lines.append(f"warnings:    {len(result.warnings)} departure(s) from QCVN 102")
        lines += [f"  {warning}" for warning in result.warnings]
    print("\n".join(lines))
    return 0
