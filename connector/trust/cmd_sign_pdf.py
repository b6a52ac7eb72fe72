"""``connector sign-pdf IN OUT --key K --cert C``: apply the organisation seal to a PDF.

With ``--trust`` the outbound policy is applied first (existing signatures valid; for
``--role main`` a valid personal signature must be present). ``--as personal`` signs with a
personal certificate instead (demos and tests). Only argument handling lives here.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from connector.errors import ConfigurationError, PermanentError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="IN", help="PDF to sign")
    parser.add_argument("output", type=Path, metavar="OUT", help="where to write the signed PDF")
    parser.add_argument("--key", type=Path, required=True,
                        help="private key (PEM/DER) or PKCS#12 file (.p12/.pfx)")
    parser.add_argument("--cert", type=Path, help="certificate (PEM/DER); optional with PKCS#12")
    parser.add_argument("--chain", type=Path, action="append", default=[],
                        help="file of intermediate CA certificates (repeatable)")
    password = parser.add_mutually_exclusive_group()
    password.add_argument("--password-env", metavar="VAR",
                          help="name of the environment variable holding the key password")
    password.add_argument("--password-file", type=Path, metavar="FILE",
                          help="file whose first line is the key password")
    parser.add_argument("--visible", action="store_true",
                        help="draw a stamp (organisation name, signing time) on the last page")
    parser.add_argument("--font", type=Path, help="TrueType/OpenType font for the stamp text")
    parser.add_argument("--as", dest="signer_kind", choices=("seal", "personal"), default="seal",
                        help="sign as the organisation seal (default) or as a person")
    parser.add_argument("--trust", type=Path, metavar="DIR",
                        help="check existing signatures against these CAs before sealing")
    parser.add_argument("--crl", type=Path, metavar="DIR", help="folder of CRL files")
    parser.add_argument("--role", choices=("main", "attachment"), default="attachment",
                        help="with --trust: the document's role (main needs a personal signature)")


def run(args: argparse.Namespace) -> int:
    from connector.trust.keys import KeySource
    from connector.trust.pdf_policy import OUTBOUND_DEFAULT, Role, seal_outbound
    from connector.trust.pdf_seal import StampOptions, seal_pdf, sign_pdf
    from connector.trust.truststore import Purpose, TrustStore, check_usage

    try:
        data = args.input.read_bytes()
    except OSError as exc:
        print(f"sign-pdf: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        identity = KeySource(
            key=args.key, cert=args.cert, chain=tuple(args.chain),
            password_env=args.password_env, password_file=args.password_file,
        ).load()
        purpose = Purpose.SEAL if args.signer_kind == "seal" else Purpose.PERSONAL
        check_usage(identity.certificate, purpose)
        stamp = StampOptions(visible=args.visible, font_file=args.font)
        if args.signer_kind == "personal":
            signed = sign_pdf(data, identity, stamp=stamp)
        elif args.trust is not None:
            trust = TrustStore.from_dirs(args.trust, args.crl)
            policy = dataclasses.replace(OUTBOUND_DEFAULT, stamp=stamp)
            signed = seal_outbound(data, Role(args.role), identity, trust, policy,
                                   name=str(args.input))
        else:
            signed = seal_pdf(data, identity, stamp=stamp)
    except (ConfigurationError, PermanentError) as exc:
        print(f"sign-pdf: {exc.message} [{exc.reason}]", file=sys.stderr)
        return 1
    args.output.write_bytes(signed)
    if signed is data:
        print(f"{args.input}: already sealed by this organisation; copied unchanged")
    else:
        print(f"signed {args.input} -> {args.output} as {identity.subject}")
    return 0
