"""``connector validate FILE...``: would the connector receive these packages?

Default (the receive level): exit 0 when every file would be received, its warnings listed
(departures from QCVN 102 it would be accepted with); 1 when any would be refused, with the
reason (``conformance.RECEIVE_NEEDS`` says what receiving needs). ``--strict`` (the emit
level, what we send): every problem of each file against the standard's limits, all at once.
Exit 2 when an argument is not a readable regular file (folder, pipe, device, missing).
This module only reports; it must not change files.
"""

from __future__ import annotations

import argparse
import json
import sys

from connector.edxml.inputfile import InputFileError, read_package_file
from connector.edxml.problems import Problem
from connector.edxml.schema import check_package


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="edXML files to validate")
    parser.add_argument("--json", action="store_true", help="one JSON report for machines")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="check the standard's limits on the bytes as they are and list every problem",
    )


def _report(name: str, data: bytes, strict: bool) -> dict[str, object]:
    if strict:
        from connector.edxml.strict import strict_problems

        problems = strict_problems(data)
        return {"file": name, "level": "strict", "valid": not problems, "kind": None,
                "problems": [p.as_dict() for p in problems], "warnings": []}
    result = check_package(data)
    kind = result.package.kind if result.package is not None else None
    return {"file": name, "level": "receive", "valid": result.ok, "kind": kind,
            "problems": [p.as_dict() for p in result.problems],
            "warnings": [w.as_dict() for w in result.warnings]}


def _print(report: dict[str, object]) -> None:
    name = report["file"]
    problems = [Problem(**p) for p in report["problems"]]  # type: ignore[attr-defined]
    warnings = [Problem(**w) for w in report["warnings"]]  # type: ignore[attr-defined]
    if report["level"] == "strict":
        if problems:
            print(f"{name}: INVALID against the standard ({len(problems)} problem(s))")
        else:
            print(f"{name}: OK (strict)")
    elif problems:
        print(f"{name}: REFUSED: would not be received ({len(problems)} problem(s))")
    else:
        print(f"{name}: OK: would be received ({report['kind']}, {len(warnings)} warning(s))")
    for problem in problems:
        print(f"  {problem}")
    for warning in warnings:
        print(f"  warning: {warning}")


def run(args: argparse.Namespace) -> int:
    reports = []
    unreadable = False
    for name in args.files:
        try:
            data = read_package_file(name)
        except InputFileError as exc:
            print(f"connector validate: {exc}", file=sys.stderr)
            unreadable = True
            continue
        report = _report(name, data, args.strict)
        reports.append(report)
        if not args.json:
            _print(report)
    if args.json:
        json.dump(reports, sys.stdout, ensure_ascii=False, indent=2)
        print()
    if unreadable:
        return 2
    return 0 if all(r["valid"] for r in reports) else 1
