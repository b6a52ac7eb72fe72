"""Configuration of the hub emulator: listening address, store, accounts, directory, faults.

Loaded from YAML (``connector hub --config FILE``) or built in Python by tests. Secrets
are never written in the YAML: an account names an environment variable (``secret_env``)
or a file (``secret_file``); Python callers may pass a ``Secret`` directly. Every problem
in a file is reported at once, with its key path. This module must not start servers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.errors import ConfigurationError
from connector.interconnect.credentials import Secret

VXP_CALLS = (
    "sendEdoc",
    "getReceivedEdocList",
    "getEdoc",
    "updateStatus",
    "getSentEdocList",
    "getAgenciesList",
)
REST_CALLS = (
    "sendDocument",
    "getPendingDocIds",
    "getDocument",
    "confirmReceived",
    "getOrganizations",
)
CALLS = VXP_CALLS + REST_CALLS
Call = Literal[
    "sendEdoc",
    "getReceivedEdocList",
    "getEdoc",
    "updateStatus",
    "getSentEdocList",
    "getAgenciesList",
    "sendDocument",
    "getPendingDocIds",
    "getDocument",
    "confirmReceived",
    "getOrganizations",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class Account(_Strict):
    """A hub account (``systemid``) bound to the one OrganId it may send as."""

    systemid: str = Field(min_length=1)
    organ_id: str = Field(min_length=1, max_length=35)
    # A platform's account (one system for several organisations, as on the VXP): the other
    # OrganIds it may send as and receives for.
    also_serves: list[str] = Field(default_factory=list)
    secret: Secret | None = Field(default=None, exclude=True, repr=False)
    secret_env: str | None = None
    secret_file: str | None = None

    @field_validator("secret", mode="before")
    @classmethod
    def _no_inline_secret(cls, value: object) -> object:
        if value is not None and not isinstance(value, Secret):
            raise ValueError(
                "secrets are never written in the config: use secret_env or secret_file"
            )
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> Account:
        given = [s for s in (self.secret, self.secret_env, self.secret_file) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of secret_env or secret_file")
        return self

    @property
    def organ_ids(self) -> tuple[str, ...]:
        """Every OrganId this account sends as and receives for, its own first."""
        return (self.organ_id, *(o for o in self.also_serves if o != self.organ_id))

    def resolve_secret(self) -> Secret:
        if self.secret is not None:
            return self.secret
        if self.secret_env is not None:
            return Secret.from_env(self.secret_env)
        assert self.secret_file is not None
        return Secret.from_file(self.secret_file)


class DirectoryEntry(_Strict):
    """One organisation of the directory (getAgenciesList)."""

    code: str = Field(min_length=1, max_length=35)  # the OrganId
    name: str
    mail: str = ""
    pid: str = ""  # parent organisation's OrganId, if any
    id: str = ""  # the hub's internal id; defaults to the code


class RefusalRule(_Strict):
    """sendEdoc of a matching package is refused for good (every given field must match)."""

    document_id: str | None = None
    sender: str | None = None
    message_type: Literal["edoc", "status"] | None = None
    error_code: str = "1099"
    description: str = "refused by the hub's rules"


class FaultSettings(_Strict):
    """Random faults; rates are probabilities per request (or per listed entry)."""

    latency_ms: float = Field(default=0.0, ge=0)
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)  # answered error_status, not processed
    error_status: int = Field(default=503, ge=400, le=599)
    drop_before_rate: float = Field(default=0.0, ge=0, le=1)  # connection closed, not processed
    drop_after_rate: float = Field(default=0.0, ge=0, le=1)  # processed, then connection closed
    duplicate_list_rate: float = Field(default=0.0, ge=0, le=1)  # entry listed twice in a list
    duplicate_delivery_rate: float = Field(default=0.0, ge=0, le=1)  # re-delivered after done
    calls: list[Call] | None = None  # calls the random faults apply to; None = every call
    refuse: list[RefusalRule] = Field(default_factory=list)
    seed: int | None = None


class TlsSettings(_Strict):
    """Serve https; with ``client_ca_file`` every client must present a certificate it issued."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


class HubConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8780, ge=0, le=65535)  # 0 = any free port
    db: Path | None = None  # SQLite file; None = in memory (not durable)
    timestamp_window_seconds: int = Field(default=300, gt=0)
    max_package_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_connections: int = Field(default=64, ge=1)  # served at once; more get 503 and close
    socket_timeout_seconds: float = Field(default=30.0, gt=0)  # per read/write, idle included
    accept_unknown_recipients: bool = False
    tls: TlsSettings | None = None
    accounts: list[Account] = Field(min_length=1)
    directory: list[DirectoryEntry] = Field(default_factory=list)
    faults: FaultSettings = Field(default_factory=FaultSettings)

    @model_validator(mode="after")
    def _unique_accounts(self) -> HubConfig:
        seen: set[str] = set()
        for account in self.accounts:
            if account.systemid in seen:
                raise ValueError(f"account systemid {account.systemid!r} appears twice")
            seen.add(account.systemid)
        return self


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> HubConfig:
    """Read a YAML file; relative ``db`` and ``secret_file`` paths are relative to it."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read hub config {file}: {exc.strerror}", reason="config"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{file}: not valid YAML: {exc}", reason="config") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{file}: expected a mapping at the top", reason="config")
    for key, value in (overrides or {}).items():
        if key == "faults" and isinstance(raw.get("faults"), dict):
            raw["faults"] = {**raw["faults"], **value}
        else:
            raw[key] = value
    base = file.parent
    if isinstance(raw.get("db"), str) and not Path(raw["db"]).is_absolute():
        raw["db"] = str(base / raw["db"])
    tls = raw.get("tls")
    if isinstance(tls, dict):
        for key in ("cert_file", "key_file", "client_ca_file"):
            if isinstance(tls.get(key), str) and not Path(tls[key]).is_absolute():
                tls[key] = str(base / tls[key])
    for account in raw.get("accounts") or []:
        if isinstance(account, dict) and isinstance(account.get("secret_file"), str):
            account["secret_file"] = str(base / account["secret_file"])
    return validate(raw, source=str(file))


def validate(raw: dict[str, Any], *, source: str = "hub config") -> HubConfig:
    try:
        return HubConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigurationError(
            f"{source}: {len(lines)} problem(s):\n" + "\n".join(lines), reason="config"
        ) from None
