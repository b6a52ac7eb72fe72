"""``connector mappings check [--dir mappings]``: load and check every mapping file.

Prints ``OK`` per good file and every problem of a bad one (file:line:column, what, what to
do); the directory file is checked too. Exit 0 when all are good, 1 when any file has a
problem, 2 on usage errors. This module only reports; it must not change files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connector.mapping.directory import load_directory
from connector.mapping.mappingset import mapping_files
from connector.mapping.spec import compile_mapping
from connector.mapping.yamlsource import MappingFileError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="check: validate every mapping file")
    parser.add_argument("--dir", default="mappings", help="folder of mapping files")
    parser.add_argument("--directory", default="config/directory.yaml",
                        help="the organisation directory file")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"connector mappings: {folder}: not a folder", file=sys.stderr)
        return 2
    bad = 0
    try:
        directory = load_directory(Path(args.directory))
        print(f"OK  {args.directory} ({len(directory.organizations)} organisations)")
    except MappingFileError as exc:
        bad += 1
        for issue in exc.issues:
            print(f"ERROR {issue}")
    files = mapping_files(folder)
    if not files:
        print(f"connector mappings: no *.yaml mapping files in {folder}", file=sys.stderr)
        return 1
    names: dict[str, Path] = {}
    for path in files:
        try:
            compiled = compile_mapping(path)
        except MappingFileError as exc:
            bad += 1
            for issue in exc.issues:
                print(f"ERROR {issue}")
            continue
        if compiled.name in names:
            bad += 1
            print(f"ERROR {path}: name {compiled.name!r} is also used by {names[compiled.name]}"
                  " — give every mapping file its own name")
            continue
        names[compiled.name] = path
        print(f"OK  {path} (mapping {compiled.name!r}, {compiled.syntax})")
    return 1 if bad else 0
