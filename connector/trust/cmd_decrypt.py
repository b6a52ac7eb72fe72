"""``connector decrypt IN OUT --key K --cert C [--password-env V]``: open a CMS envelope.

Reads DER or PEM CMS AuthEnvelopedData (ours or ``openssl cms -encrypt -aes-256-gcm``), and
writes the plaintext only after the GCM tag verified, with mode 0600. ``K`` is a PEM/DER key
or a PKCS#12 file (then ``--cert`` may be omitted); its password comes from the variable named
by ``--password-env`` or the file named by ``--password-file``, never from the command line.
Exit 0 on success, 1 if decryption failed (wrong key, tampered envelope), 2 on usage errors.
This module only wires files to :mod:`connector.trust.cms`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys

from connector.errors import ConnectorError, PermanentError
from connector.trust.cmd_encrypt import read_input, write_output

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="envelope to decrypt ('-' for stdin)")
    parser.add_argument("output", metavar="OUT", help="plaintext to write ('-' for stdout)")
    parser.add_argument("--key", required=True, metavar="K",
                        help="our decryption key: PEM/DER private key or PKCS#12 (.p12/.pfx)")
    parser.add_argument("--cert", metavar="C",
                        help="our encryption certificate (required unless K is PKCS#12)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-env", metavar="V",
                        help="environment variable holding the key's password")
    source.add_argument("--password-file", metavar="F", help="file holding the key's password")


def der_from(data: bytes) -> bytes:
    """The DER of a DER or PEM-armoured envelope."""
    match = _PEM.search(data)
    if match is None:
        return data
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise PermanentError("PEM envelope body is not base64",
                             reason="envelope_malformed") from None


def run(args: argparse.Namespace) -> int:
    from connector.trust import cms
    from connector.trust.keys import load_identity

    try:
        identity = load_identity(args.key, args.cert, password_env=args.password_env,
                                 password_file=args.password_file)
        plaintext = cms.decrypt(der_from(read_input(args.input)), identity.private_key,
                                identity.certificate)
        write_output(args.output, plaintext, private=True)
    except OSError as exc:
        print(f"connector decrypt: {exc.filename or args.input}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except ConnectorError as exc:
        print(f"connector decrypt: {exc.message} [{exc.reason}]", file=sys.stderr)
        return 1
    if args.output != "-":
        print(f"{args.output}: decrypted {len(plaintext)} bytes (authenticated)",
              file=sys.stderr)
    return 0
