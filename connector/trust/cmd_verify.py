"""``connector verify FILE --trust DIR [--crl DIR]``: a readable report and a verdict.

For a PDF: every signature (who, personal or organisation, integrity, trust, later changes)
and the policy for its role. For an edXML package: the package's XML signature, then every
PDF attachment (the first PDF is the main document unless ``--main`` names another). Exit 0
only if every required check passes, 1 otherwise. Only reporting lives here; the checks are in
:mod:`pdf_verify`, :mod:`pdf_policy` and :mod:`xmldsig`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from connector.errors import ConfigurationError, PermanentError

Emit = Callable[[str], None]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="a PDF or an edXML package")
    parser.add_argument("--trust", type=Path, required=True, metavar="DIR",
                        help="folder of trusted CA certificates (PEM/DER)")
    parser.add_argument("--crl", type=Path, metavar="DIR", help="folder of CRL files")
    parser.add_argument("--revocation", choices=("hard-fail", "soft-fail", "require"),
                        default="hard-fail",
                        help="when revocation status cannot be established (default hard-fail)")
    parser.add_argument("--role", choices=("main", "attachment", "any"), default="any",
                        help="PDF only: main needs personal+seal, attachment needs the seal, "
                             "any needs one valid signature (default)")
    parser.add_argument("--main", metavar="NAME",
                        help="edXML: attachment name of the main document (default: first PDF)")
    parser.add_argument("--sender", metavar="ORGANID",
                        help="require seals (and the package signer) to carry this OrganId")
    parser.add_argument("--legacy", choices=("accept", "refuse"), default="accept",
                        help="edXML: a package with only the QCVN placeholder signature")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show the validation libraries' own diagnostics")


def _report_pdf(data: bytes, name: str, role: str, trust: object, sender: str | None,
                emit: Emit) -> bool:
    from connector.trust.pdf_policy import PdfPolicy, Role, check_inbound
    from connector.trust.pdf_verify import verify_pdf
    from connector.trust.truststore import TrustStore

    assert isinstance(trust, TrustStore)
    try:
        report = verify_pdf(data, trust)
    except PermanentError as exc:
        emit(f"  {name}: {exc.message} [{exc.reason}]")
        return False
    emit(f"  {name}: {len(report.signatures)} signature(s), checked as {role}")
    for number, sig in enumerate(report.signatures, start=1):
        when = sig.signing_time.isoformat() if sig.signing_time else "unknown time"
        organ = f" OrganId {sig.organ_id}" if sig.organ_id else ""
        emit(f"    [{number}] {sig.field_name}: {sig.kind or '?'} signature{organ}, {when}")
        emit(f"        signer: {sig.signer}")
        emit(f"        integrity {'ok' if sig.intact else 'BROKEN'}, signature "
             f"{'ok' if sig.valid else 'BAD'}, trust {'ok' if sig.trusted else 'NO'}, "
             f"covers {sig.coverage.lower().replace('_', ' ')}, later changes "
             f"{sig.modification.lower().replace('_', ' ')}")
        emit(f"        => {'VALID' if sig.ok else 'INVALID [' + str(sig.reason) + ']'}"
             + (f": {sig.problem}" if sig.problem else ""))
    if role == "any":
        if not report.signatures:
            emit("    no signature: INVALID [unsigned]")
        return report.all_ok
    policy = PdfPolicy(seal_must_match_sender=sender is not None)
    try:
        check_inbound(data, Role(role), trust, policy, sender_organ_id=sender, name=name)
    except PermanentError as exc:
        emit(f"    policy ({role}): NOT MET [{exc.reason}]: {exc.message}")
        return False
    emit(f"    policy ({role}): met")
    return True


def _report_package(data: bytes, args: argparse.Namespace, trust: object, emit: Emit) -> bool:
    from connector.edxml import parse_package
    from connector.edxml.model import EdocPackage
    from connector.trust import xmldsig
    from connector.trust.pdf_policy import is_pdf
    from connector.trust.truststore import TrustStore

    assert isinstance(trust, TrustStore)
    ok = True
    emit("  package signature:")
    try:
        verified = xmldsig.verify_package(
            data, trust, legacy_policy=args.legacy, expected_organ_id=args.sender
        )
    except PermanentError as exc:
        emit(f"    INVALID [{exc.reason}]: {exc.message}")
        return False
    for decision in verified.decisions:
        emit(f"    {decision.code}: {decision.message}")
    if verified.signed:
        emit(f"    VALID: signed by {verified.signer_subject} ({verified.signer_kind})")
    package = parse_package(verified.data)  # only the verified bytes go further
    if not isinstance(package, EdocPackage):
        emit("  status message: no attachments")
        return ok
    pdfs = [a for a in package.attachments if is_pdf(a.data)]
    main_name = args.main or (pdfs[0].name if pdfs else None)
    emit(f"  attachments: {len(package.attachments)} ({len(pdfs)} PDF); main document: "
         f"{main_name or 'none'}")
    if args.main and not any(a.name == args.main for a in pdfs):
        emit(f"    main document {args.main} is not among the PDF attachments: INVALID")
        ok = False
    for attachment in package.attachments:
        if "pkcs7-mime" in attachment.content_type:
            emit(f"  {attachment.name}: encrypted (CMS); decrypt it to check its signatures: "
                 "NOT CHECKED")
            ok = False
        elif not is_pdf(attachment.data):
            emit(f"  {attachment.name}: {attachment.content_type}, not a PDF: no PDF signature")
        else:
            role = "main" if attachment.name == main_name else "attachment"
            ok = _report_pdf(attachment.data, attachment.name, role, trust, args.sender,
                             emit) and ok
    return ok


def run(args: argparse.Namespace) -> int:
    from connector.trust.pdf_policy import is_pdf
    from connector.trust.truststore import TrustStore

    if not args.verbose:
        for name in ("pyhanko", "pyhanko_certvalidator", "signxml"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        data = args.file.read_bytes()
        trust = TrustStore.from_dirs(args.trust, args.crl, revocation_mode=args.revocation)
    except OSError as exc:
        print(f"verify: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    except ConfigurationError as exc:
        print(f"verify: {exc.message}", file=sys.stderr)
        return 1
    lines: list[str] = []
    emit = lines.append
    if is_pdf(data):
        emit(f"{args.file}: PDF")
        ok = _report_pdf(data, args.file.name, args.role, trust, args.sender, emit)
    else:
        emit(f"{args.file}: edXML package")
        try:
            ok = _report_package(data, args, trust, emit)
        except PermanentError as exc:
            emit(f"  not a valid package: {exc.message} [{exc.reason}]")
            ok = False
    emit(f"VERDICT: {'VALID' if ok else 'INVALID'}")
    print("\n".join(lines))
    return 0 if ok else 1
