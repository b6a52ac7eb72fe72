"""Adapters from the real parts (mappings, PDF seals, XML signature, CMS) to the daemon's ports.

Each adapter holds what it needs as plain values; the PDF adapter is picklable (paths, not
key objects) so the worker pool's processes load keys and the trust store once each. No
adapter decides a message's fate: they raise the parts' typed errors unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector.edxml.model import Attachment, EdocPackage, Organization, StatusPackage
from connector.edxml.summary import peek
from connector.errors import ConfigurationError, PermanentError
from connector.local.base import DeliveryKind, LocalDelivery, LocalRecord, RecordLimits
from connector.mapping import LocalDocument, LocalFormat, MappingSet
from connector.trust.content import AttachmentChecks, check_attachments
from connector.trust.keys import IdentitySource, KeySource, SigningIdentity
from connector.trust.origin import OriginPolicy, XmlFacts
from connector.trust.pdf_policy import PdfPolicy, Role, check_inbound, is_pdf, seal_outbound
from connector.trust.pkcs11_keys import TokenKeySource
from connector.trust.truststore import TrustStore
from connector.trust.xmldsig import LegacyPolicy, PackageSigner, verify_package

_CN = re.compile(r"(?:^|,)CN=((?:\\,|[^,])+)")


def common_name(subject: str) -> str:
    """The CN of an RFC 4514 subject (the whole subject when it has none)."""
    found = _CN.search(subject)
    return found.group(1).replace("\\,", ",") if found else subject


@dataclass
class MappingAdapter:
    mappings: MappingSet
    agency: Organization
    attachments_dir: Path | None = None
    inbound_format: str | None = None  # the local format received documents are written in
    limits: RecordLimits | None = None  # local.limits (None: the defaults)

    def record_to_package(self, record: LocalRecord) -> EdocPackage:
        return self._format_of(record).record_to_package(
            record, attachments_dir=self.attachments_dir, limits=self.limits
        )

    def command_to_status(self, record: LocalRecord) -> StatusPackage:
        return self._format_of(record).command_to_status(record, own=self.agency,
                                                         limits=self.limits)

    def _format_of(self, record: LocalRecord) -> LocalFormat:
        # A record naming a mapping that is not loaded is refused (dead-lettered, replayable
        # once the mapping exists); waiting for it as for a broken deployment would loop.
        declared = record.content_type.split(";", 1)[0].strip().lower()
        if declared not in ("application/json", "application/xml"):
            declared = ""  # not a record type we read by: the mapping decides
        if not record.mapping and declared:
            # The content type is honoured: a record of the other syntax than the default
            # mapping's goes to the one loaded mapping of its syntax.
            fitting = [f for f in self.mappings.formats.values() if f.content_type == declared]
            default = self.mappings.formats.get(self.mappings.default or "")
            if len(fitting) == 1 and (default is None or default.content_type != declared):
                return fitting[0]
        try:
            chosen = self.mappings.get(record.mapping)
        except ConfigurationError as exc:
            raise PermanentError(
                f"record {record.record_id!r}: {exc.message}",
                reason="unknown_mapping",
                stage="mapping",
            ) from exc
        if declared and declared != chosen.content_type:
            raise PermanentError(
                f"record {record.record_id!r} is declared {declared}, but mapping "
                f"{chosen.name!r} reads {chosen.content_type}: publish it with the content "
                "type it has, or name a mapping of that syntax (x-mapping)",
                reason="content_type_mismatch",
                stage="mapping",
            )
        return chosen

    def package_to_delivery(self, package: EdocPackage, delivery_id: str) -> LocalDelivery:
        document = self.mappings.get(self.inbound_format).package_to_record(package)
        return _delivery(
            delivery_id,
            DeliveryKind.DOCUMENT,
            document,
            package.document_id,
            package.from_.organ_id,
            priority=str(package.priority),
            **{"business-doc-type": str(int(package.business_doc_type))},
        )

    def status_to_delivery(self, package: StatusPackage, delivery_id: str) -> LocalDelivery:
        document = self.mappings.get(self.inbound_format).status_to_event(package)
        return _delivery(
            delivery_id,
            DeliveryKind.STATUS,
            document,
            package.document_id,
            package.from_.organ_id,
            **{"status-code": package.status_code.value},
        )


def _delivery(
    delivery_id: str,
    kind: DeliveryKind,
    document: LocalDocument,
    document_id: str,
    sender: str,
    **headers: str,
) -> LocalDelivery:
    return LocalDelivery(
        delivery_id=delivery_id,
        kind=kind,
        body=document.body,
        content_type=document.content_type,
        attachments=document.files,
        headers={"document-id": document_id, "from": sender, **headers},
    )


# Loaded once per process (the worker pool's processes each build their own).
_trust_cache: dict[tuple[str, str | None], TrustStore] = {}


def _trust(trust_dir: str, crl_dir: str | None) -> TrustStore:
    key = (trust_dir, crl_dir)
    store = _trust_cache.get(key)
    if store is None:
        store = TrustStore.from_dirs(trust_dir, crl_dir)
        _trust_cache[key] = store
    return store


@dataclass(frozen=True)
class PdfAdapter:
    """PDF policy and organisation seal; picklable for a process pool."""

    seal: KeySource | TokenKeySource  # picklable: each worker loads it / opens its token
    trust_dir: str
    crl_dir: str | None = None
    outbound: PdfPolicy = field(default_factory=PdfPolicy)
    inbound: PdfPolicy = field(default_factory=PdfPolicy)

    def seal_outbound(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
        trust = _trust(self.trust_dir, self.crl_dir)
        result = []
        for index, item in enumerate(attachments):
            if not is_pdf(item.data):
                result.append(item)  # PAdES applies to PDFs; other files travel as they are
                continue
            role = Role.MAIN if index == 0 else Role.ATTACHMENT
            sealed = seal_outbound(item.data, role, self.seal, trust, self.outbound, name=item.name)
            result.append(dataclasses.replace(item, data=sealed))
        return tuple(result)

    def verify_inbound(self, attachments: Sequence[Attachment], sender_organ_id: str) -> list[str]:
        trust = _trust(self.trust_dir, self.crl_dir)
        notes = []
        for index, item in enumerate(attachments):
            if not is_pdf(item.data):
                notes.append(f"{item.name}: not a PDF, no PDF signature checked")
                continue
            role = Role.MAIN if index == 0 else Role.ATTACHMENT
            report = check_inbound(
                item.data,
                role,
                trust,
                self.inbound,
                sender_organ_id=sender_organ_id,
                name=item.name,
            )
            signers = ", ".join(f"{s.kind}: {common_name(s.signer)}" for s in report.signatures)
            notes.append(f"{item.name}: {len(report.signatures)} valid signature(s) ({signers})")
        return notes

    def check_inbound(
        self, attachments: Sequence[Attachment], main_content_id: str | None
    ) -> AttachmentChecks:
        """Content and PDF checks of every attachment, the manifest's main document first."""
        trust = _trust(self.trust_dir, self.crl_dir)
        return check_attachments(attachments, main_content_id, trust, self.inbound)


@dataclass
class SignerAdapter:
    identity: SigningIdentity | IdentitySource  # a source is loaded at the first signature
    _signer: PackageSigner | None = None

    def sign(self, package_bytes: bytes) -> bytes:
        if self._signer is None:
            identity = self.identity
            loaded = identity if isinstance(identity, SigningIdentity) else identity.load()
            self._signer = PackageSigner(loaded)
        return self._signer.sign(package_bytes)


@dataclass(frozen=True)
class Verified:
    data: bytes
    notes: Sequence[str]
    signed: bool = False
    signer_organ_id: str | None = None
    facts: XmlFacts = field(default_factory=lambda: XmlFacts(False, False))


@dataclass
class VerifierAdapter:
    """XML signature verification plus the policy for packages without one.

    A package with only the QCVN placeholder (``legacy_policy``) or no signature at all
    (``unsigned_policy``) is accepted or refused by policy; a status package from a peer in
    ``unsigned_status_from`` is accepted without signature whatever the policy (statuses carry
    no PDF that could vouch for them, so the peer must be named explicitly). Who the package
    is from is decided afterwards by ``origin`` (``connector.trust.origin``).
    """

    trust: TrustStore
    legacy_policy: LegacyPolicy = "accept"
    unsigned_policy: LegacyPolicy = "refuse"
    unsigned_status_from: frozenset[str] = frozenset()
    origin: OriginPolicy = field(default_factory=OriginPolicy)

    def __post_init__(self) -> None:
        if self.unsigned_status_from and not self.origin.unsigned_status_from:
            self.origin = dataclasses.replace(
                self.origin, unsigned_status_from=self.unsigned_status_from
            )

    def verify(self, package_bytes: bytes) -> Verified:
        result = verify_package(
            package_bytes, self.trust, legacy_policy="accept", unsigned_policy="accept"
        )
        notes = [f"{d.code}: {d.message}" for d in result.decisions]
        if result.signed:
            notes.insert(
                0, f"XML signature valid, signer {common_name(result.signer_subject or '')}"
            )
            return Verified(
                result.data, notes, True, result.signer_organ_id, XmlFacts.of(result)
            )
        placeholder = any(d.code == "legacy_placeholder_accepted" for d in result.decisions)
        policy = self.legacy_policy if placeholder else self.unsigned_policy
        summary = peek(result.data)
        if summary.kind == "status" and summary.from_organ_id in self.unsigned_status_from:
            notes.append(f"unsigned status accepted from {summary.from_organ_id} by policy")
        elif policy != "accept":
            if placeholder:
                raise PermanentError(
                    "package carries only a legacy QCVN Signature placeholder (no XML-DSig) and "
                    "the policy refuses it",
                    reason="legacy_signature_refused",
                    stage="xml_verify",
                )
            raise PermanentError(
                "package has no XML signature (no ds:Signature in edXMLHeader)",
                reason="signature_missing",
                stage="xml_verify",
            )
        return Verified(result.data, notes, False, None, XmlFacts.of(result))


@dataclass
class NoEncryption:
    """Encryption policy ``off`` everywhere."""

    def encrypt_for(
        self, attachments: Sequence[Attachment], recipients: Sequence[str]
    ) -> tuple[Attachment, ...]:
        return tuple(attachments)

    def decrypt(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
        return tuple(attachments)
