"""Attachment encryption for a package: who can read it decides whether it is encrypted.

The hub must still read the edXML header to validate and route, so only the content is
encrypted: each attachment becomes an S/MIME-style encrypted entity (RFC 8551).

Wire shape of an encrypted attachment (the design choice):

* ``content_type`` (manifest *and* AttachmentEncoded): ``application/pkcs7-mime;
  smime-type=authEnveloped-data; name="smime.p7m"``;
* ``name``: the original name plus ``.p7m`` (so operators still recognise the file);
* ``data``: DER CMS AuthEnvelopedData (see :mod:`connector.trust.cms`) whose plaintext is a
  small MIME entity: ``Content-Type`` (the real type), ``Content-Disposition: attachment;
  filename*=UTF-8''…`` (the real name, RFC 2231, so Vietnamese names survive), and
  ``Content-Transfer-Encoding: binary``, a blank line, then the file's bytes unchanged.
  The real type and name are therefore authenticated by GCM and recoverable by any S/MIME
  tool (``openssl cms -decrypt`` prints that entity);
* ``content_id`` and ``description`` are kept as they are.

Decision per package, from every destination's policy (``off`` | ``when-possible`` |
``required``) and encryption certificate: attachments are encrypted when at least one
destination wants encryption and *every* destination can decrypt (has a certificate and is
not ``off``). A ``required`` destination without a certificate is refused
(``encryption_cert_missing``); a ``required`` destination sharing the package with one that
cannot decrypt is refused as well (``encryption_conflict``: send separate packages). In the
``when-possible`` case the package goes unencrypted and the decision says why. The sender's own
encryption certificate may be added as a recipient so its archive stays readable.

Order in the pipeline: seal the PDFs, encrypt here, build the package, sign the package; the
receiver verifies, then decrypts here. This module must not build or sign packages.
"""

from __future__ import annotations

import enum
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from cryptography import x509

from connector.edxml.model import Attachment
from connector.errors import PermanentError
from connector.trust import cms
from connector.trust.truststore import Purpose, TrustStore

__all__ = [
    "ENCRYPTED_CONTENT_TYPE",
    "Destination",
    "EncryptionOutcome",
    "EncryptionPolicy",
    "decrypt_attachment",
    "decrypt_attachments",
    "encrypt_attachment",
    "encrypt_attachments",
    "is_encrypted",
]

ENCRYPTED_CONTENT_TYPE = 'application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"'
ENCRYPTED_SUFFIX = ".p7m"
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
_HEADER_END = b"\r\n\r\n"


class EncryptionPolicy(enum.StrEnum):
    OFF = "off"
    WHEN_POSSIBLE = "when-possible"
    REQUIRED = "required"


@dataclass(frozen=True)
class Destination:
    """One recipient of the package: its OrganId, policy and encryption certificate."""

    organ_id: str
    policy: EncryptionPolicy
    certificate: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()  # intermediates, for the trust check


@dataclass(frozen=True)
class EncryptionOutcome:
    """The attachments to package, whether they were encrypted, and why."""

    attachments: tuple[Attachment, ...]
    encrypted: bool
    recipients: tuple[str, ...]  # OrganIds that can decrypt (empty when not encrypted)
    decision: str


def is_encrypted(attachment: Attachment) -> bool:
    """True for an attachment made by :func:`encrypt_attachment` (or any S/MIME peer)."""
    kind = attachment.content_type.lower().replace(" ", "")
    return kind.startswith("application/pkcs7-mime") and "smime-type=authenveloped-data" in kind


def encrypt_attachment(attachment: Attachment,
                       recipient_certs: Sequence[x509.Certificate]) -> Attachment:
    """Wrap one attachment (real type and name inside) for every certificate."""
    # The MIME entity is header + file, encrypted as two parts: never joined in memory.
    entity = (_mime_entity(attachment.content_type, attachment.name), attachment.data)
    return replace(
        attachment,
        name=attachment.name + ENCRYPTED_SUFFIX,
        content_type=ENCRYPTED_CONTENT_TYPE,
        data=cms.encrypt_parts(entity, recipient_certs),
    )


def decrypt_attachment(attachment: Attachment, private_key: object,
                       cert: x509.Certificate) -> Attachment:
    """Reverse :func:`encrypt_attachment` with our encryption key; plain ones pass through."""
    if not is_encrypted(attachment):
        return attachment
    try:
        entity = cms.decrypt(attachment.data, private_key, cert)
    except PermanentError as exc:
        raise PermanentError(f"attachment {attachment.name!r} (cid:{attachment.content_id}): "
                             f"{exc.message}", reason=exc.reason, stage=exc.stage) from exc
    content_type, name, data = _parse_entity(entity, attachment)
    return replace(attachment, name=name, content_type=content_type, data=data)


def decrypt_attachments(attachments: Sequence[Attachment], private_key: object,
                        cert: x509.Certificate) -> tuple[Attachment, ...]:
    return tuple(decrypt_attachment(a, private_key, cert) for a in attachments)


def encrypt_attachments(
    attachments: Sequence[Attachment],
    destinations: Sequence[Destination],
    *,
    sender_certificate: x509.Certificate | None = None,
    trust: TrustStore | None = None,
) -> EncryptionOutcome:
    """Decide (see module docstring) and encrypt every attachment for every destination.

    With ``trust``, each recipient certificate is first checked for encryption use (chain,
    validity, revocation); a bad certificate refuses the package with the trust store's reason.
    """
    if not destinations:
        raise PermanentError("package has no destination to encrypt for",
                             reason="encryption_cert_missing")
    missing = [d.organ_id for d in destinations
               if d.policy is EncryptionPolicy.REQUIRED and d.certificate is None]
    if missing:
        raise PermanentError(
            f"encryption is required for {', '.join(missing)} but no encryption certificate is "
            "configured for it; add the certificate or change its policy",
            reason="encryption_cert_missing")
    wanting = [d for d in destinations if d.policy is not EncryptionPolicy.OFF]
    unable = [d for d in destinations
              if d.policy is EncryptionPolicy.OFF or d.certificate is None]
    if not wanting:
        return _plain(attachments, "encryption is off for every destination")
    if unable:
        names = ", ".join(
            f"{d.organ_id} ({'encryption off' if d.policy is EncryptionPolicy.OFF else 'no cert'})"
            for d in unable)
        required = [d.organ_id for d in wanting if d.policy is EncryptionPolicy.REQUIRED]
        if required:
            raise PermanentError(
                f"{', '.join(required)} require(s) encryption but {names} cannot decrypt; "
                "send them separate packages", reason="encryption_conflict")
        return _plain(attachments, f"not encrypted: {names} cannot decrypt")
    certs = [d.certificate for d in destinations if d.certificate is not None]
    if trust is not None:
        for destination in destinations:
            assert destination.certificate is not None
            trust.validate(destination.certificate, destination.chain,
                           purpose=Purpose.ENCRYPTION)
    if sender_certificate is not None:
        certs.append(sender_certificate)
    encrypted = tuple(encrypt_attachment(a, certs) for a in attachments)
    recipients = tuple(d.organ_id for d in destinations)
    return EncryptionOutcome(encrypted, True, recipients,
                             f"encrypted for {', '.join(recipients)}"
                             + (" and the sender" if sender_certificate is not None else ""))


def _plain(attachments: Sequence[Attachment], decision: str) -> EncryptionOutcome:
    return EncryptionOutcome(tuple(attachments), False, (), decision)


def _mime_entity(content_type: str, name: str) -> bytes:
    real_type = content_type.split(";", 1)[0].strip()
    if not _CONTENT_TYPE.match(real_type):
        real_type = "application/octet-stream"
    quoted = urllib.parse.quote(name, safe="")
    lines = [
        f"Content-Type: {real_type}",
        f"Content-Disposition: attachment; filename*=UTF-8''{quoted}",
        "Content-Transfer-Encoding: binary",
    ]
    return ("\r\n".join(lines)).encode("ascii") + _HEADER_END


def _parse_entity(entity: bytes, attachment: Attachment) -> tuple[str, str, bytes]:
    end = entity.find(_HEADER_END)
    separator = len(_HEADER_END)
    if end < 0:  # a peer that wrote bare LF line endings
        end, separator = entity.find(b"\n\n"), 2
    if end < 0:
        raise PermanentError(f"decrypted attachment {attachment.name!r} is not a MIME entity "
                             "(no header block)", reason="envelope_malformed")
    headers: EmailMessage = BytesHeaderParser(policy=default_policy).parsebytes(
        entity[:end + separator])
    encoding = str(headers.get("Content-Transfer-Encoding", "binary")).strip().lower()
    if encoding not in ("binary", "8bit", "7bit"):
        raise PermanentError(f"decrypted attachment {attachment.name!r} uses transfer encoding "
                             f"{encoding}; binary expected", reason="envelope_malformed")
    name = headers.get_filename() or headers.get_param("name", header="content-type")
    if not isinstance(name, str) or not name:
        name = attachment.name.removesuffix(ENCRYPTED_SUFFIX)
    return headers.get_content_type(), name, entity[end + separator:]
