"""``connector verify FILE --trust DIR [--crl DIR]``: a readable report and a verdict.

For a PDF: every signature (who, personal or organisation, integrity, trust, later changes)
and the policy for its role. For an edXML package: the daemon's checks on receipt — the XML
signature, routing (``--for``), every attachment's content and PDF signatures (the main
document is the manifest's first, as the daemon takes it) and the sender binding — with the
verdict of :func:`connector.trust.origin.decide`, the very function the daemon uses
(``--config`` takes the daemon's own policy). Exit 0 only if every required check passes, 1
otherwise. Only reporting lives here; the checks are in :mod:`pdf_verify`, :mod:`pdf_policy`,
:mod:`xmldsig`, :mod:`content` and :mod:`origin`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from connector.errors import ConfigurationError, PermanentError

Emit = Callable[[str], None]
_CONTENT_REASONS = frozenset({"executable_content", "content_type_mismatch"})


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
                        help="edXML: attachment name of the main document (default: the first "
                             "manifest Reference, as the daemon takes it)")
    parser.add_argument("--sender", metavar="ORGANID",
                        help="edXML: the package must be from this OrganId and every seal "
                             "bound to it")
    parser.add_argument("--legacy", choices=("accept", "refuse"), default="accept",
                        help="edXML: a package with only the QCVN placeholder signature")
    parser.add_argument("--unsigned", choices=("accept", "refuse"), default="refuse",
                        help="edXML: a package with no signature element at all")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="edXML: take the trust policy on receipt (sender binding, PDF "
                             "policy, our OrganId) from a connector configuration")
    parser.add_argument("--for", dest="receiver", metavar="ORGANID",
                        help="edXML: our OrganId; a document not addressed to it is INVALID")
    parser.add_argument("--refuse-unbound", action="store_true",
                        help="edXML: refuse a sender no rule binds (sender_unverified)")
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


def _policies(args: argparse.Namespace) -> tuple[object, object, str | None]:
    """The trust policy on receipt, PDF policy and our OrganId: from ``--config`` (the very
    settings the daemon uses) or the defaults, tightened by ``--sender``/``--refuse-unbound``."""
    import dataclasses

    from connector.trust.origin import OriginPolicy
    from connector.trust.pdf_policy import PdfPolicy

    policy, pdf, ours = OriginPolicy(), PdfPolicy(), args.receiver
    if args.config is not None:
        from connector.config import load_config
        from connector.daemon.wiring import origin_policy, pdf_policy

        config = load_config(args.config)
        directory = config.agency.directory or config.mappings.dir / "directory.yaml"
        policy = origin_policy(config, directory)
        pdf = pdf_policy(config.trust.pdf.inbound)
        ours = ours or config.agency.organ_id
    if args.sender:
        policy = dataclasses.replace(policy, seals_must_be_bound=True)
    if args.refuse_unbound:
        policy = dataclasses.replace(policy, when_unbound="refuse")
    return policy, pdf, ours


def _report_package(data: bytes, args: argparse.Namespace, trust: object, emit: Emit) -> bool:
    """The daemon's checks on receipt (``connector.trust.origin.decide`` gives the verdict),
    with every signature reported on the way."""
    from connector.edxml import parse_package
    from connector.edxml.model import EdocPackage
    from connector.trust import xmldsig
    from connector.trust.content import check_attachments, main_content_id, main_first
    from connector.trust.origin import OriginPolicy, Refusal, XmlFacts, check_addressed, decide
    from connector.trust.pdf_policy import PdfPolicy, is_pdf
    from connector.trust.truststore import TrustStore

    assert isinstance(trust, TrustStore)
    policy, pdf_policy, ours = _policies(args)
    assert isinstance(policy, OriginPolicy) and isinstance(pdf_policy, PdfPolicy)
    emit("  package signature:")
    try:
        verified = xmldsig.verify_package(
            data, trust, legacy_policy=args.legacy, unsigned_policy=args.unsigned
        )
    except PermanentError as exc:
        emit(f"    INVALID [{exc.reason}]: {exc.message}")
        return False
    for decision in verified.decisions:
        emit(f"    {decision.code}: {decision.message}")
    if verified.signed:
        emit(f"    VALID: signed by {verified.signer_subject} ({verified.signer_kind})")
    package = parse_package(verified.data)  # only the verified bytes go further
    sender = package.from_.organ_id
    if args.sender and sender != args.sender:
        emit(f"  sender: the package says it is from {sender}, not {args.sender}: INVALID")
        return False
    checks = None
    try:
        if isinstance(package, EdocPackage):
            if ours:
                check_addressed((t.organ_id for t in package.to), (ours,))
            main_id = main_content_id(verified.data)
            if args.main:
                main_id = next((a.content_id for a in package.attachments
                                if a.name == args.main), args.main)
            ordered = main_first(package.attachments, main_id)
            emit(f"  attachments: {len(ordered)}; main document: "
                 f"{ordered[0].name if ordered else 'none'} (the manifest's first)")
            checks = check_attachments(ordered, main_id, trust, pdf_policy)
            for attachment, item in zip(ordered, checks.items, strict=True):
                if "pkcs7-mime" in attachment.content_type:
                    emit(f"  {attachment.name}: encrypted (CMS); decrypt it to check it")
                elif is_pdf(attachment.data) and item.reason not in _CONTENT_REASONS:
                    _report_pdf(attachment.data, attachment.name, item.role, trust, None, emit)
                else:
                    emit(f"  {attachment.name}: {item.note}"
                         + (f" [{item.reason}]" if item.reason else ""))
        else:
            emit("  status message: no attachments")
        verdict = decide(policy, kind=package.kind, claimed=sender,
                         xml=XmlFacts.of(verified), checks=checks)
    except Refusal as exc:
        answered = "a 02 would go back" if exc.sender_established else "no 02 (sender unknown)"
        emit(f"  origin: REFUSED [{exc.reason}]: {exc.message} ({answered})")
        return False
    emit(f"  origin: {verdict.note(sender)}")
    return True


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
