"""``connector map --mapping NAME FILE``: map one local record to edXML, or back.

Forward (default): FILE is a local record (JSON or XML per the mapping); the classification
gate runs first; the edXML package is validated against our XSD and printed. ``--command``
maps a local workflow command to a status package instead. ``--reverse``: FILE is an edXML
package (document or status); the local record (or status event) is printed, and the files
it references are written to ``--files-dir`` when given. Errors go to stderr.
Exit codes: 0 done, 1 the record/package was refused or is invalid, 2 usage/configuration.
This module only wires arguments to the mapping API; it must not map anything itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connector.edxml.inputfile import InputFileError, read_package_file
from connector.errors import ConfigurationError, PermanentError
from connector.mapping.cmd_mappings import add_location_options, locations
from connector.mapping.directory import load_directory
from connector.mapping.mappingset import LocalFormat, load_format
from connector.mapping.yamlsource import MappingFileError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the local record (or edXML with --reverse)")
    parser.add_argument("--mapping", required=True, metavar="NAME",
                        help="mapping name in --dir, or a path to a mapping file")
    parser.add_argument("--reverse", action="store_true", help="edXML package -> local record")
    parser.add_argument("--command", action="store_true", dest="is_command",
                        help="FILE is a workflow command: map it to a status package")
    add_location_options(parser)  # --dir/--directory, else the configuration's
    parser.add_argument("--attachments-dir", metavar="DIR",
                        help="spool folder for files referenced by records (claim checks)")
    parser.add_argument("--own", metavar="CODE",
                        help="--command: this agency's local code or OrganId (the reporter)")
    parser.add_argument("--files-dir", metavar="DIR",
                        help="--reverse: write the files of the received package here")


def resolve_mapping_file(name: str, folder: Path) -> Path:
    direct = Path(name)
    if direct.suffix in (".yaml", ".yml") and direct.is_file():
        return direct
    for suffix in (".yaml", ".yml"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise ConfigurationError(f"no mapping {name!r}: neither a file nor {folder}/{name}.yaml",
                             reason="mapping_unknown", stage="mapping")


def run(args: argparse.Namespace) -> int:
    try:
        folder, directory = locations(args)
        fmt = load_format(resolve_mapping_file(args.mapping, folder), load_directory(directory))
        data = read_package_file(args.file)  # stat first: a folder, FIFO or device never hangs
    except InputFileError as exc:
        print(f"connector map: {exc}", file=sys.stderr)
        return 2
    except MappingFileError as exc:
        for issue in exc.issues:
            print(f"connector map: {issue}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"connector map: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"connector map: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        return _reverse(fmt, data, args) if args.reverse else _forward(fmt, data, args)
    except PermanentError as exc:
        print(f"connector map: {args.file}: refused ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except ConfigurationError as exc:
        print(f"connector map: {exc}", file=sys.stderr)
        return 2


def _forward(fmt: LocalFormat, data: bytes, args: argparse.Namespace) -> int:
    from connector.edxml import build_package, validate_package

    if args.is_command:
        own = fmt.directory.find(args.own) if args.own else None
        if args.own and own is None:
            print(f"connector map: --own {args.own!r} is not in the directory", file=sys.stderr)
            return 2
        package = build_package(fmt.command_to_status(data, own=own))
    else:
        spool = Path(args.attachments_dir) if args.attachments_dir else Path(args.file).parent
        package = build_package(fmt.record_to_package(data, attachments_dir=spool))
    problems = validate_package(package)
    if problems:
        for problem in problems:
            print(f"connector map: the package does not validate: {problem}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(package)
    return 0


def _reverse(fmt: LocalFormat, data: bytes, args: argparse.Namespace) -> int:
    from connector.edxml import EdocPackage, check_package

    # The receive level: everything the connector would receive maps back; its departures
    # from QCVN 102 are listed as warnings.
    result = check_package(data)
    if not result.ok or result.package is None:
        for problem in result.problems:
            print(f"connector map: {args.file}: would be refused on receipt: {problem}",
                  file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"connector map: warning: {warning}", file=sys.stderr)
    package = result.package
    local = (fmt.package_to_record(package) if isinstance(package, EdocPackage)
             else fmt.status_to_event(package))
    sys.stdout.buffer.write(local.body)
    if local.files:
        if args.files_dir:
            target = Path(args.files_dir)
            target.mkdir(parents=True, exist_ok=True)
            for name, content in local.files:
                (target / name).write_bytes(content)
            print(f"connector map: wrote {len(local.files)} file(s) to {target}", file=sys.stderr)
        else:
            names = ", ".join(f"{n} ({len(b)} bytes)" for n, b in local.files)
            print(f"connector map: files referenced (use --files-dir to write them): {names}",
                  file=sys.stderr)
    return 0
