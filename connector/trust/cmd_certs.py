"""``connector certs [--config FILE] [--json]``: every certificate and CRL in use, with days left.

Lists our own certificates (seal, XML signer, encryption, hub TLS client), the peers'
encryption certificates, the trust anchors and CA certificates of the trust folder, and the
CRLs with their next update — soonest expiry first. Exit 0 when all are valid, 1 when one
has expired (or a CRL is out of date, or a file cannot be read), 2 when the configuration
cannot be loaded. This module only reads files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from connector.errors import ConnectorError

DEFAULT_CONFIG = "config/connector.yaml"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"connector YAML file (default: $CONNECTOR_CONFIG, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int:
    from connector.config import load_config
    from connector.trust.cert_inventory import inventory

    path = args.config or os.environ.get("CONNECTOR_CONFIG") or DEFAULT_CONFIG
    try:
        config = load_config(path)
    except ConnectorError as exc:
        print(f"connector certs: {exc.message}", file=sys.stderr)
        return 2
    now = dt.datetime.now(dt.UTC)
    found = inventory(config)
    certificates = sorted(found.certificates, key=lambda c: c.not_after)
    crls = sorted(found.crls, key=lambda c: c.next_update or dt.datetime.max.replace(tzinfo=dt.UTC))
    bad = len(found.problems)
    if args.json:
        for cert in certificates:
            print(json.dumps({
                "kind": "certificate", "role": cert.role, "name": cert.name,
                "subject": cert.subject, "issuer": cert.issuer, "file": str(cert.path),
                "not_after": cert.not_after.isoformat(), "days_left": round(cert.days_left(now), 1),
            }, ensure_ascii=False))
        for crl in crls:
            print(json.dumps({
                "kind": "crl", "issuer": crl.issuer, "file": str(crl.path),
                "next_update": crl.next_update.isoformat() if crl.next_update else None,
                "days_left": round(_days(crl.next_update, now), 1) if crl.next_update else None,
            }, ensure_ascii=False))
    else:
        print(f"{'DAYS':>6}  {'NOT AFTER (UTC)':16}  {'ROLE':16}  {'NAME':22}  SUBJECT")
        for cert in certificates:
            days = cert.days_left(now)
            mark = "  EXPIRED" if days < 0 else ""
            print(f"{days:>6.0f}  {cert.not_after:%Y-%m-%d %H:%M}  {cert.role:16}  "
                  f"{cert.name[:22]:22}  {cert.subject}{mark}")
        if crls:
            print(f"\n{'DAYS':>6}  {'NEXT UPDATE (UTC)':16}  CRL")
        for crl in crls:
            if crl.next_update is None:
                print(f"{'-':>6}  {'-':16}  {crl.path.name} ({crl.issuer})")
                continue
            days = _days(crl.next_update, now)
            mark = "  OUT OF DATE" if days < 0 else ""
            print(f"{days:>6.1f}  {crl.next_update:%Y-%m-%d %H:%M}  {crl.path.name} "
                  f"({crl.issuer}){mark}")
    for problem in found.problems:
        print(f"error: {problem.key}: {problem.message}", file=sys.stderr)
    bad += sum(1 for c in certificates if c.days_left(now) < 0)
    bad += sum(1 for c in crls if c.next_update is not None and c.next_update < now)
    return 1 if bad else 0


def _days(moment: dt.datetime, now: dt.datetime) -> float:
    return (moment - now).total_seconds() / 86400.0
