"""Which organisation a signing certificate speaks for (sender binding), by configured rules.

A certificate vouches for an organisation only when it is an *organisation* certificate (by
:func:`connector.trust.truststore.certificate_kind`) and one of these rules binds it to an
OrganId:

* ``pinned``: the SHA-256 of the certificate (DER) or of its public key (SubjectPublicKeyInfo
  DER) is pinned for that OrganId (per peer in the configuration, or in the directory);
* ``issued_names``: the certificate's organisationName (O) or commonName (CN) is one of the
  names the CA issues to that organisation (compared after Unicode NFC and case folding);
* ``organ_id_in_certificate``: the certificate's organizationIdentifier is the OrganId (on by
  default; a peer entry may turn it off, e.g. when its CA writes another identifier there).

Personal certificates vouch for a person, never for an organisation: they are never bound.
A certificate bound to no OrganId is *unbound*; one bound to an OrganId other than the one
claimed is a *mismatch*. This module decides bindings; it must not verify signatures, read
files or configuration, or decide what happens to a package (that is :mod:`origin`).
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from connector.trust.truststore import SignerKind, certificate_kind, organ_id_of, subject_of


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _attribute(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = certificate.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


@dataclass(frozen=True)
class SignerFacts:
    """What binding needs to know about one signing certificate (plain values, picklable)."""

    subject: str
    kind: SignerKind
    organ_id: str | None  # organizationIdentifier
    names: tuple[str, ...]  # organisationName and commonName, as issued
    certificate_sha256: str
    key_sha256: str

    @classmethod
    def of(cls, certificate: x509.Certificate) -> SignerFacts:
        der = certificate.public_bytes(serialization.Encoding.DER)
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        names = tuple(
            n for n in (_attribute(certificate, NameOID.ORGANIZATION_NAME),
                        _attribute(certificate, NameOID.COMMON_NAME)) if n
        )
        return cls(
            subject=subject_of(certificate),
            kind=certificate_kind(certificate),
            organ_id=organ_id_of(certificate),
            names=names,
            certificate_sha256=hashlib.sha256(der).hexdigest(),
            key_sha256=hashlib.sha256(spki).hexdigest(),
        )


@dataclass(frozen=True)
class PeerBinding:
    """How certificates are bound to one organisation."""

    organ_id: str
    organ_id_in_certificate: bool = True
    pinned_sha256: frozenset[str] = frozenset()  # certificate or public-key fingerprints
    issued_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        pins = frozenset(p.replace(":", "").strip().lower() for p in self.pinned_sha256)
        object.__setattr__(self, "pinned_sha256", pins)
        object.__setattr__(self, "issued_names", frozenset(_fold(n) for n in self.issued_names))


class Binding(enum.StrEnum):
    """A certificate against the OrganId a package claims."""

    BOUND = "bound"  # an organisation certificate bound to the claimed OrganId
    MISMATCH = "mismatch"  # an organisation certificate bound to another OrganId only
    UNBOUND = "unbound"  # an organisation certificate no rule binds to any OrganId
    PERSONAL = "personal"  # a personal certificate: vouches for no organisation


@dataclass(frozen=True)
class BindingRules:
    """Every peer's binding, plus the default for organisations without an entry."""

    peers: tuple[PeerBinding, ...] = ()
    organ_id_in_certificate: bool = True  # for organisations without an entry
    _index: dict[str, PeerBinding] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        merged: dict[str, PeerBinding] = {}
        for peer in self.peers:
            known = merged.get(peer.organ_id)
            if known is not None:  # the same peer in the configuration and the directory
                peer = PeerBinding(
                    peer.organ_id,
                    known.organ_id_in_certificate and peer.organ_id_in_certificate,
                    known.pinned_sha256 | peer.pinned_sha256,
                    known.issued_names | peer.issued_names,
                )
            merged[peer.organ_id] = peer
        object.__setattr__(self, "_index", merged)

    @classmethod
    def of(cls, peers: Iterable[PeerBinding], organ_id_in_certificate: bool = True
           ) -> BindingRules:
        return cls(tuple(peers), organ_id_in_certificate)

    def organisations_of(self, signer: SignerFacts) -> frozenset[str]:
        """Every OrganId the certificate is bound to (empty for personal certificates)."""
        if signer.kind is not SignerKind.ORGANISATION:
            return frozenset()
        found: set[str] = set()
        names = {_fold(n) for n in signer.names}
        for peer in self._index.values():
            pinned = peer.pinned_sha256 & {signer.certificate_sha256, signer.key_sha256}
            if pinned or peer.issued_names & names:
                found.add(peer.organ_id)
        if signer.organ_id:
            entry = self._index.get(signer.organ_id)
            allowed = entry.organ_id_in_certificate if entry else self.organ_id_in_certificate
            if allowed:
                found.add(signer.organ_id)
        return frozenset(found)

    def judge(self, signer: SignerFacts, claimed: str) -> Binding:
        if signer.kind is not SignerKind.ORGANISATION:
            return Binding.PERSONAL
        bound = self.organisations_of(signer)
        if claimed in bound:
            return Binding.BOUND
        return Binding.MISMATCH if bound else Binding.UNBOUND
