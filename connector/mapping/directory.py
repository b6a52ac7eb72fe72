"""The organisation directory: local department codes -> interconnect identities.

OrganIds change when provinces merge (QĐ 09/2025/QĐ-TTg), so they are data in
``config/directory.yaml``, never constants in code. Each entry is one organisation with its
OrganId, the local codes agency software uses for it, and the contact details edXML carries
in From/To. Lookups accept a local code (case-insensitive) or the OrganId itself; the
reverse gives the first local code (or the OrganId when the entry has none).

This module loads and answers lookups; it must not know about records or packages.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.edxml.model import Organization
from connector.errors import PermanentError
from connector.mapping.yamlsource import Issue, Locations, MappingFileError, load_located

_ORGAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Binding(BaseModel):
    """How the organisation's certificates are bound to its OrganId (sender binding)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organ_id_in_certificate: bool = True
    pinned_sha256: list[str] = Field(default_factory=list)
    issued_names: list[str] = Field(default_factory=list)

    @field_validator("pinned_sha256")
    @classmethod
    def _fingerprints(cls, values: list[str]) -> list[str]:
        for value in values:
            clean = value.replace(":", "").lower()
            if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
                raise ValueError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
        return values


@dataclass(frozen=True)
class CertificateBinding:
    """A directory entry's ``certificates`` block, as plain values (read by the trust policy
    on receipt; this module does not interpret it)."""

    organ_id_in_certificate: bool = True
    pinned_sha256: tuple[str, ...] = ()
    issued_names: tuple[str, ...] = ()


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organ_id: str = Field(max_length=35)
    codes: list[str] = Field(default_factory=list)
    organ_name: str = Field(max_length=200)
    organization_in_charge: str | None = Field(default=None, max_length=500)
    organ_add: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=100)
    telephone: str | None = Field(default=None, max_length=20)
    fax: str | None = Field(default=None, max_length=20)
    website: str | None = Field(default=None, max_length=20)
    certificates: _Binding | None = None  # sender binding of this organisation's certificates

    @field_validator("organ_id")
    @classmethod
    def _organ_id(cls, value: str) -> str:
        if not _ORGAN_ID.match(value):
            raise ValueError("an OrganId is letters, digits and dots, like 000.00.31.H12")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("codes", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class _DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    organizations: list[_Entry]


class UnknownOrganization(PermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unknown_organization", stage="mapping")


@dataclass(frozen=True)
class Directory:
    """Immutable lookups over the directory file's entries."""

    source: str
    organizations: tuple[Organization, ...]
    codes: dict[str, tuple[str, ...]]  # OrganId -> local codes
    bindings: dict[str, CertificateBinding] = field(default_factory=dict)  # OrganId -> block

    @classmethod
    def from_entries(cls, entries: Iterable[Organization | tuple[Organization, tuple[str, ...]]],
                     source: str = "<memory>") -> Directory:
        orgs: list[Organization] = []
        codes: dict[str, tuple[str, ...]] = {}
        for item in entries:
            org, org_codes = item if isinstance(item, tuple) else (item, ())
            orgs.append(org)
            codes[org.organ_id] = tuple(org_codes)
        return cls(source, tuple(orgs), codes)

    @functools.cached_property
    def _index(self) -> dict[str, Organization]:
        index: dict[str, Organization] = {}
        for org in self.organizations:
            index[org.organ_id.casefold()] = org
            for code in self.codes.get(org.organ_id, ()):
                index.setdefault(code.casefold(), org)
        return index

    def find(self, key: str) -> Organization | None:
        return self._index.get(key.strip().casefold())

    def resolve(self, key: str, *, field: str) -> Organization:
        """The organisation for a local code or OrganId, or a record error naming the field."""
        found = self.find(key)
        if found is None:
            raise UnknownOrganization(
                f"{field}: no organisation with local code or OrganId {key.strip()!r} in the "
                f"directory {self.source}; add an entry for it (organ_id, codes, organ_name)"
            )
        return found

    def by_organ_id(self, organ_id: str) -> Organization | None:
        for org in self.organizations:
            if org.organ_id == organ_id:
                return org
        return None

    def local_code(self, organ_id: str) -> str:
        """The first local code for an OrganId; the OrganId itself when there is none."""
        codes = self.codes.get(organ_id)
        return codes[0] if codes else organ_id


def load_directory(path: Path) -> Directory:
    """Load and check ``config/directory.yaml``; every problem reported with its line."""
    data, locs = load_located(path)
    try:
        parsed = _DirectoryFile.model_validate(data)
    except ValidationError as exc:
        raise MappingFileError([_issue(locs, err) for err in exc.errors()]) from None
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    orgs: list[tuple[Organization, tuple[str, ...]]] = []
    bindings: dict[str, CertificateBinding] = {}
    for i, entry in enumerate(parsed.organizations):
        for j, key in enumerate([entry.organ_id, *entry.codes]):
            folded = key.casefold()
            if folded in seen and seen[folded] != i:
                loc: tuple[str | int, ...] = (("organizations", i, "organ_id") if j == 0
                                              else ("organizations", i, "codes", j - 1))
                issues.append(locs.issue(loc, f"{key!r} is already used by entry {seen[folded]}",
                                         "every OrganId and local code must be unique"))
            seen[folded] = i
        org = Organization(
            organ_id=entry.organ_id,
            organization_in_charge=entry.organization_in_charge,
            organ_name=entry.organ_name,
            organ_add=entry.organ_add,
            email=entry.email,
            telephone=entry.telephone,
            fax=entry.fax,
            website=entry.website,
        )
        orgs.append((org, tuple(entry.codes)))
        if entry.certificates is not None:
            bindings[entry.organ_id] = CertificateBinding(
                entry.certificates.organ_id_in_certificate,
                tuple(entry.certificates.pinned_sha256),
                tuple(entry.certificates.issued_names),
            )
    if issues:
        raise MappingFileError(issues)
    return dataclasses.replace(Directory.from_entries(orgs, source=str(path)), bindings=bindings)


def _issue(locs: Locations, err: Any) -> Issue:
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return locs.issue(loc, f"unknown key {loc[-1]!r}",
                          "allowed keys: organ_id, codes, organ_name, organization_in_charge, "
                          "organ_add, email, telephone, fax, website, certificates "
                          "(organ_id_in_certificate, pinned_sha256, issued_names)")
    if kind == "missing":
        return locs.issue(loc, f"required key {loc[-1]!r} is missing", "add it")
    return locs.issue(loc, str(err.get("msg", "invalid value")), "fix the value")
