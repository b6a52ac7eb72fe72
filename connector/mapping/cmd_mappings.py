"""``connector mappings check [--dir mappings | --config FILE]``: check every mapping file.

Prints ``OK`` per good file and every problem of a bad one (file:line:column, what, what to
do); the directory file is checked too. Exit 0 when all are good, 1 when any file has a
problem, 2 on usage errors. This module only reports; it must not change files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from connector.mapping.directory import load_directory
from connector.mapping.mappingset import mapping_files
from connector.mapping.spec import compile_mapping
from connector.mapping.yamlsource import MappingFileError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="check: validate every mapping file")
    add_location_options(parser)


def add_location_options(parser: argparse.ArgumentParser) -> None:
    """--dir/--directory, else those of the configuration (--config, $CONNECTOR_CONFIG)."""
    parser.add_argument("--dir", default=None,
                        help="folder of mapping files (default: the configuration's "
                        "mappings.dir, else ./mappings)")
    parser.add_argument("--directory", default=None,
                        help="the organisation directory file (default: the configuration's "
                        "agency.directory, else ./config/directory.yaml)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="connector YAML file whose mappings.dir and agency.directory to "
                        "use (default: $CONNECTOR_CONFIG)")


def locations(args: argparse.Namespace) -> tuple[Path, Path]:
    """The mapping folder and the organisation directory: as given, else from the
    configuration (as in the container, where the working folder has no ./mappings), else
    the checkout's ./mappings and ./config/directory.yaml."""
    folder = Path(args.dir) if args.dir else None
    directory = Path(args.directory) if args.directory else None
    config_path = getattr(args, "config", None) or os.environ.get("CONNECTOR_CONFIG")
    if (folder is None or directory is None) and config_path:
        from connector.config import load_config

        config = load_config(config_path)  # a broken file: its own one-line error
        folder = folder or config.mappings.dir
        directory = directory or config.agency.directory or folder / "directory.yaml"
    return folder or Path("mappings"), directory or Path("config/directory.yaml")


def run(args: argparse.Namespace) -> int:
    from connector.errors import ConnectorError

    try:
        folder, directory_file = locations(args)
    except ConnectorError as exc:
        print(f"connector mappings: {exc.message}", file=sys.stderr)
        return 2
    args.dir, args.directory = str(folder), str(directory_file)
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
