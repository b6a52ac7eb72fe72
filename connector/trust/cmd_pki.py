"""``connector pki init DIR [--force]``: create the demo PKI (see :mod:`connector.trust.pki`).

Only argument handling and a printed summary live here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from connector.errors import ConfigurationError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="create a demo root, intermediate and agency keys in DIR")
    init.add_argument("directory", type=Path, metavar="DIR")
    init.add_argument("--force", action="store_true", help="replace an existing demo PKI in DIR")
    init.add_argument("--province", action="store_true",
                      help="two more organisations (config/connector-province.yaml)")


def run(args: argparse.Namespace) -> int:
    from connector.trust.pki import DEMO_AGENCIES, PROVINCE_AGENCIES, create_demo_pki

    agencies = PROVINCE_AGENCIES if getattr(args, "province", False) else DEMO_AGENCIES
    try:
        pki = create_demo_pki(args.directory, agencies, force=args.force)
    except ConfigurationError as exc:
        print(f"pki init: {exc.message}", file=sys.stderr)
        return 1
    print(f"demo PKI created in {pki.directory}")
    print(f"  trust anchors   {pki.trust_dir}")
    print(f"  CRLs            {pki.crl_dir}")
    print(f"  intermediate    {pki.intermediate_cert}")
    for agency in pki.agencies.values():
        print(f"  {agency.organ_id}  {agency.name}")
        print(f"    seal          {agency.seal.key}  {agency.seal.cert}")
        print(f"    seal PKCS#12  {agency.seal_p12} (password in {agency.seal_p12_password_file})")
        print(f"    signer        {agency.signer.key}  {agency.signer.cert}")
        print(f"    encryption    {agency.encryption.key}  {agency.encryption.cert}")
    print(f"  negative cases  {pki.revoked.cert.parent}")
    return 0
