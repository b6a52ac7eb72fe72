"""``connector validate FILE...``: is each file an acceptable edXML package?

Without ``--strict`` a file is checked as a received package (tolerant parse, then the
normalised form against our XSD); with ``--strict`` the bytes must validate as they are,
as everything we emit does. Exit 0 if all valid, 1 if any invalid, 2 on usage errors.
This module only reports; it must not change files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from connector.edxml.problems import Problem
from connector.edxml.schema import check_package, validate_package


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="edXML files to validate")
    parser.add_argument("--json", action="store_true", help="one JSON report for machines")
    parser.add_argument(
        "--strict", action="store_true", help="the bytes must match the strict wire shape as-is"
    )


def _check(path: Path, strict: bool) -> tuple[list[Problem], list[str], str | None]:
    data = path.read_bytes()
    if strict:
        return validate_package(data), [], None
    result = check_package(data)
    kind = result.package.kind if result.package is not None else None
    return result.problems, result.notes, kind


def run(args: argparse.Namespace) -> int:
    reports = []
    any_invalid = False
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"connector validate: {name}: no such file", file=sys.stderr)
            return 2
        problems, notes, kind = _check(path, args.strict)
        any_invalid = any_invalid or bool(problems)
        reports.append(
            {
                "file": name,
                "valid": not problems,
                "kind": kind,
                "problems": [p.as_dict() for p in problems],
                "notes": notes,
            }
        )
        if not args.json:
            if problems:
                print(f"{name}: INVALID ({len(problems)} problem(s))")
                for problem in problems:
                    print(f"  {problem}")
            else:
                print(f"{name}: OK{f' ({kind})' if kind else ''}")
            for note in notes:
                print(f"  note: {note}")
    if args.json:
        json.dump(reports, sys.stdout, ensure_ascii=False, indent=2)
        print()
    return 1 if any_invalid else 0
