"""``connector check [--config FILE] [--online]``: could the connector start, and with what?

Loads everything ``run`` loads — configuration, files and secrets, schemas, mappings and the
organisation directory, keys, certificates, trust store, at-rest keys, hub TLS set-up,
broker settings, the store's schema — and reports every problem of every phase at once,
sorted by file and line, each naming the line that caused it. Then prints what the
connector would run with (local side, hub endpoint, store, metrics address, every
certificate's notAfter and every CRL's next update).

``--online`` then probes each dependency for real (hub: DNS, TCP, TLS, an authenticated
harmless call; broker: login and a passive declare; store: a read-only open) and names the
root cause of each failure.

Exit codes, as for ``run``: 0 it could start (and, with ``--online``, every dependency
answered), 2 the configuration is invalid or incomplete, 1 a dependency failed its probe.
It is read-only: it creates no folder, store or queue and leaves the spool lock alone.
"""

from __future__ import annotations

import argparse
import os
import sys

from connector.errors import ConnectorError

DEFAULT_CONFIG = "config/connector.yaml"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"connector YAML file (default: $CONNECTOR_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--online", action="store_true", help="also probe the hub, the broker and the store"
    )


def run(args: argparse.Namespace) -> int:
    from connector.config import InvalidConfiguration, load_config
    from connector.daemon.check_offline import check_offline

    path = getattr(args, "config", None) or os.environ.get("CONNECTOR_CONFIG") or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except InvalidConfiguration as exc:
        print(f"{path}: configuration is not valid:", file=sys.stderr)
        for problem in sorted(exc.problems, key=lambda p: (p.file, p.line or 0, p.key)):
            print(f"  {problem}", file=sys.stderr)
        return 2
    except ConnectorError as exc:
        print(f"{path}: configuration is not valid:\n  {exc.message}", file=sys.stderr)
        return 2
    report = check_offline(config)
    # What it would run with first, then the certificates and CRLs.
    for label, value in sorted(report.facts, key=lambda f: f[0].startswith(("certificate", "crl"))):
        print(f"{label}: {value}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problems = report.sorted_problems()
    if problems:
        print(f"{path}: {len(problems)} problem(s); the connector cannot start:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if getattr(args, "online", False):
        from connector.daemon.check_online import check_online

        probes = check_online(config)
        for probe in probes:
            print(f"online {probe}", file=sys.stdout if probe.ok else sys.stderr)
        if not all(probe.ok for probe in probes):
            print(f"{path}: configuration OK, but a dependency failed its probe",
                  file=sys.stderr)
            return 1
    print(f"{path}: OK")
    return 0
