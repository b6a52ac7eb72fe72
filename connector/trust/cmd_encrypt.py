"""``connector encrypt IN OUT --cert C [--cert C2 ...]``: CMS AuthEnvelopedData for recipients.

Writes DER (``--pem`` for PEM armour) that ``openssl cms -decrypt -inform DER`` and
``connector decrypt`` read. Each ``--cert`` file names one recipient (its first certificate);
RSA recipients get RSA-OAEP-SHA256, EC recipients ECDH with the SHA-256 KDF. ``-`` reads
standard input / writes standard output. Exit 0 on success, 1 if encryption failed, 2 on
usage errors. This module only wires files to :mod:`connector.trust.cms`.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

from connector.errors import ConnectorError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="file to encrypt ('-' for stdin)")
    parser.add_argument("output", metavar="OUT", help="envelope to write ('-' for stdout)")
    parser.add_argument("--cert", action="append", required=True, metavar="C",
                        help="recipient certificate (PEM or DER); repeat for more recipients")
    parser.add_argument("--pem", action="store_true", help="write PEM ('-----BEGIN CMS-----')")


def read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def write_output(name: str, data: bytes, *, private: bool) -> None:
    """Write atomically (temporary file, then rename); ``private`` files get mode 0600."""
    if name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(name)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def pem_armour(der: bytes) -> bytes:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN CMS-----\n" + "\n".join(lines) + "\n-----END CMS-----\n").encode()


def run(args: argparse.Namespace) -> int:
    from connector.trust import cms
    from connector.trust.keys import load_certificates

    try:
        certificates = [load_certificates(path)[0] for path in args.cert]
        data = read_input(args.input)
        envelope = cms.encrypt(data, certificates)
        write_output(args.output, pem_armour(envelope) if args.pem else envelope, private=False)
    except OSError as exc:
        print(f"connector encrypt: {exc.filename or args.input}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except ConnectorError as exc:
        print(f"connector encrypt: {exc.message} [{exc.reason}]", file=sys.stderr)
        return 1
    if args.output != "-":
        print(f"{args.output}: encrypted {len(data)} bytes for {len(certificates)} "
              "recipient(s) (CMS AuthEnvelopedData, AES-256-GCM)", file=sys.stderr)
    return 0
