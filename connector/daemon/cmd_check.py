"""``connector check --config FILE``: load configuration, mappings, schemas, keys and trust
store, and report every problem with its reason. Exit 0 when the connector could start.

It builds the same parts ``run`` builds (without starting workers or the metrics server)
and closes them again; it never touches a message.
"""

from __future__ import annotations

import argparse
import sys

from connector.errors import ConnectorError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="connector YAML file")


def run(args: argparse.Namespace) -> int:
    from connector.config import check_paths, load_config
    from connector.daemon import wiring
    from connector.edxml.schema import validate_package

    try:
        config = load_config(args.config)
    except ConnectorError as exc:
        print(f"{args.config}: configuration is not valid:\n{exc.message}", file=sys.stderr)
        return 1
    problems = check_paths(config)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    validate_package(b"<edXML xmlns='http://www.mic.gov.vn/TBT/QCVN_102_2016'/>")  # schemas
    try:
        runtime = wiring.build(config, start_metrics=False, exclusive_local=False)
    except ConnectorError as exc:
        print(f"{args.config}: cannot start: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.config}: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        for key, value in wiring.describe(runtime).items():
            print(f"{key}: {value}")
    finally:
        runtime.close()
    print(f"{args.config}: OK")
    return 0
