"""The schema of a connector's YAML configuration (pydantic models), one class per section.

Every section forbids unknown keys. Relative paths are resolved against the configuration
file's folder (the loader passes it as validation context). Secrets are never values here:
a section names an environment variable (``*_env``) or a file (``*_file``) holding them,
and :class:`SecretRef` reads them when a component starts. Values that mirror another
module's settings keep that module's field names (``RetryPolicy``, ``AmqpSettings``,
``VxpSettings``, ``KeySource``, ``PdfPolicy``) so the wiring is a plain copy.

This module must not read files or the environment.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from connector.config_types import (
    ConfigPath,
    EncryptionPolicy,
    EnvName,
    OrganId,
    Seconds,
    SecretRef,
    Section,
    one_of,
)
from connector.interconnect.http_edge import is_loopback


class AgencyConfig(Section):
    organ_id: OrganId
    name: str = Field(min_length=1, max_length=200)
    directory: ConfigPath | None = None  # organisation directory (local codes → OrganIds)


class SpoolDirs(Section):
    """Folder names under the spool root (or absolute paths)."""

    outbound: Path = Path("outbound")
    commands: Path = Path("commands")
    inbound: Path = Path("inbound")
    events: Path = Path("events")
    failed: Path = Path("failed")


class SpoolConfig(Section):
    root: ConfigPath
    dirs: SpoolDirs = SpoolDirs()
    settle_seconds: float = Field(default=1.0, ge=0)  # ignore files younger than this
    poll_interval: Seconds = 0.5

    def folder(self, name: Literal["outbound", "commands", "inbound", "events", "failed"]) -> Path:
        """One spool folder: its name under ``root``, or the absolute path given."""
        folder: Path = getattr(self.dirs, name)
        return self.root / folder


class AmqpTopologyConfig(Section):
    """Names of ``AmqpTopology``; omitted names keep the adapter's defaults."""

    prefix: str = ""  # prepended to every default name (several connectors on one broker)
    outbound_queue: str | None = None
    commands_queue: str | None = None
    quarantine_queue: str | None = None
    dead_letter_queue: str | None = None
    received_exchange: str | None = None
    inbound_queue: str | None = None
    events_exchange: str | None = None
    events_queue: str | None = None
    max_priority: int | None = Field(default=None, ge=1, le=255)


class AmqpConfig(Section):
    """Fields of ``AmqpSettings``; omitted values keep the adapter's defaults."""

    url: str = "amqp://guest@127.0.0.1:5672//"
    password_env: EnvName | None = None
    password_file: ConfigPath | None = None
    topology: AmqpTopologyConfig = AmqpTopologyConfig()
    prefetch: int | None = Field(default=None, ge=1)
    heartbeat: float | None = Field(default=None, ge=0)
    connect_timeout: Seconds | None = None
    publish_timeout: Seconds | None = None
    max_deliveries: int | None = Field(default=None, ge=1)
    reconnect_initial_delay: Seconds | None = None
    reconnect_max_delay: Seconds | None = None
    tls_ca_file: ConfigPath | None = None
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    claim_check_dir: ConfigPath | None = None
    inline_attachments_max_bytes: int | None = Field(default=None, ge=0)
    connection_name: str | None = None

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError("expected an amqp:// or amqps:// URL")
        if parts.password:
            raise ValueError(
                "the URL contains a password: keep the user in the URL and give the password "
                "with password_env or password_file"
            )
        return value

    @model_validator(mode="after")
    def _password_source(self) -> AmqpConfig:
        one_of(self.password_env, self.password_file, "password", required=False)
        return self

    @property
    def password(self) -> SecretRef:
        return SecretRef(self.password_env, self.password_file)

    def settings_overrides(self) -> dict[str, object]:
        """The ``AmqpSettings`` fields given here (topology and password excluded)."""
        skip = {"topology", "password_env", "password_file"}
        return {k: v for k, v in self.model_dump().items() if k not in skip and v is not None}


class LocalLimitsConfig(Section):
    """Fields of ``connector.local.base.RecordLimits``: bounds on records, enforced while
    reading (a record over a limit is refused with its reason, never read whole)."""

    max_record_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_attachments: int = Field(default=100, ge=1)
    max_text_chars: int = Field(default=100_000, ge=100)


class LocalConfig(Section):
    type: Literal["spool", "amqp"] = "spool"
    spool: SpoolConfig | None = None
    amqp: AmqpConfig | None = None
    limits: LocalLimitsConfig = LocalLimitsConfig()

    @model_validator(mode="after")
    def _selected_section_given(self) -> LocalConfig:
        if getattr(self, self.type) is None:
            raise ValueError(f"local.type is {self.type}: the local.{self.type} section is missing")
        return self


class HubTls(Section):
    """Certificates are always verified; ``ca_file`` replaces the system's trust store."""

    ca_file: ConfigPath | None = None
    client_cert: ConfigPath | None = None
    client_key: ConfigPath | None = None
    client_key_password_env: EnvName | None = None
    client_key_password_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HubTls:
        one_of(
            self.client_key_password_env,
            self.client_key_password_file,
            "client_key_password",
            required=False,
        )
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key is given without client_cert")
        return self

    @property
    def client_key_password(self) -> SecretRef:
        return SecretRef(self.client_key_password_env, self.client_key_password_file)


class HubTimeouts(Section):
    connect: Seconds = 5.0
    read: Seconds = 60.0
    write: Seconds = 60.0
    pool: Seconds = 10.0


class ZipAttachments(Section):
    """Zip each attachment before base64, as the national axis library does."""

    default: bool = True
    peers: dict[OrganId, bool] = Field(default_factory=dict)

    def for_peer(self, organ_id: str) -> bool:
        return self.peers.get(organ_id, self.default)


class HubRestWire(Section):
    """The eDoc REST v2 wire's variable points (known from vendor notes, not a captured
    client; docs/hub-protocol.md): header names and the ``hash-edoc`` hex form."""

    hash_form: Literal["standard", "sdk"] = "standard"
    organ_header: str = Field(default="organid", min_length=1)
    token_header: str = Field(default="authorization", min_length=1)
    hash_header: str = Field(default="hash-edoc", min_length=1)
    file_part: str = Field(default="file", min_length=1)  # with upload: multipart


class HubConfig(Section):
    """The interconnect hub. ``vxp``: the national axis protocol (the hub emulator speaks it
    too), account ``systemid`` + HMAC secret. ``edoc-rest``: a Bkav eDoc REST v2 provincial
    hub, where the secret is the access token the hub issued (``systemid`` unused)."""

    type: Literal["vxp", "edoc-rest"] = "vxp"
    endpoint: str
    systemid: str = ""
    secret_env: EnvName | None = None
    secret_file: ConfigPath | None = None
    tls: HubTls = HubTls()
    timeouts: HubTimeouts = HubTimeouts()
    max_connections: int = Field(default=4, ge=1)
    allow_plain_http: bool = False  # http:// to a host other than loopback
    zip_attachments: ZipAttachments = ZipAttachments()
    # The package upload: "raw" body as the VXP SDK sends it, or a multipart part.
    upload: Literal["raw", "multipart"] = "raw"
    # Largest hub answer read (a getEdoc answer carries the package in base64): enforced
    # while the answer streams in.
    max_answer_bytes: int = Field(default=96 * 1024 * 1024, ge=64 * 1024)
    rest: HubRestWire = HubRestWire()

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the URL: use secret_env/secret_file")
        return value

    @model_validator(mode="after")
    def _secure(self) -> HubConfig:
        one_of(self.secret_env, self.secret_file, "secret", required=True)
        if self.type == "vxp" and not self.systemid:
            raise ValueError("a vxp hub needs the account: systemid")
        host = urlsplit(self.endpoint).hostname or ""
        if urlsplit(self.endpoint).scheme == "http" and not (
            is_loopback(host) or self.allow_plain_http
        ):
            raise ValueError(
                f"plain http to {host} would send packages unencrypted: use https "
                "(or set allow_plain_http: true for a test network)"
            )
        return self

    @property
    def secret(self) -> SecretRef:
        return SecretRef(self.secret_env, self.secret_file)


class StoreConfig(Section):
    """The tracking store: a SQLite file (one daemon), or PostgreSQL (any number of replicas
    with the same configuration; README "PostgreSQL store / replicas")."""

    type: Literal["sqlite", "postgres"] = "sqlite"
    path: ConfigPath | None = None  # sqlite: the store file
    at_rest_key_file: ConfigPath | None = None  # keyring: "<key-id> <base64>" per line
    at_rest_key_env: EnvName | None = None
    busy_timeout: Seconds = 30.0  # sqlite
    # postgres: a libpq connection string or URI without its password (password in
    # ~/.pgpass or PGPASSWORD), or the whole string from dsn_env / dsn_file.
    dsn: str | None = Field(default=None, min_length=1)
    dsn_env: EnvName | None = None
    dsn_file: ConfigPath | None = None
    schema_name: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    pool_size: int = Field(default=4, ge=1, le=100)  # connections per replica
    connect_timeout: Seconds = 10.0

    @model_validator(mode="after")
    def _key_source(self) -> StoreConfig:
        if self.at_rest_key_file is None and self.at_rest_key_env is None:
            raise ValueError(
                "payloads are encrypted at rest: give at_rest_key_file or at_rest_key_env"
            )
        given = [n for n in ("dsn", "dsn_env", "dsn_file") if getattr(self, n) is not None]
        if self.type == "sqlite":
            if self.path is None:
                raise ValueError("a sqlite store needs path (the store file)")
            if given:
                raise ValueError(f"{given[0]} is for type: postgres (this store is sqlite)")
        else:
            if self.path is not None:
                raise ValueError("path is for type: sqlite (a postgres store takes dsn)")
            if len(given) != 1:
                raise ValueError("a postgres store needs one of dsn, dsn_env or dsn_file")
            if self.dsn is not None and _has_password(self.dsn):
                raise ValueError(
                    "store.dsn holds a password: put the connection string in dsn_env or "
                    "dsn_file, or the password in ~/.pgpass or PGPASSWORD"
                )
        return self

    @property
    def dsn_secret(self) -> SecretRef:
        """Where the whole connection string lives when it is not written in ``dsn``."""
        return SecretRef(self.dsn_env, self.dsn_file)


def _has_password(dsn: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return bool(conninfo_to_dict(dsn).get("password"))
    except Exception as exc:  # psycopg.ProgrammingError: not a connection string
        raise ValueError(f"store.dsn is not a PostgreSQL connection string: {exc}") from None


class MappingsConfig(Section):
    dir: ConfigPath
    default: str = Field(min_length=1)  # mapping for records that name none


class Pkcs11KeyConfig(Section):
    """A key in a PKCS#11 token or HSM (``connector.trust.pkcs11_keys.TokenKeySource``)."""

    module: ConfigPath  # the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
    token_label: str = Field(min_length=1)
    key_label: str | None = Field(default=None, min_length=1)
    key_id: str | None = Field(default=None, pattern=r"^([0-9a-fA-F]{2})+$")  # CKA_ID, hex
    cert_label: str | None = Field(default=None, min_length=1)  # certificate in the token
    cert_file: ConfigPath | None = None  # ... or in a file (may hold intermediates too)
    pin_env: EnvName | None = None
    pin_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _complete(self) -> Pkcs11KeyConfig:
        one_of(self.pin_env, self.pin_file, "pin", required=False)
        if self.key_label is None and self.key_id is None:
            raise ValueError("give key_label or key_id (the key's CKA_LABEL / CKA_ID)")
        if self.cert_label is not None and self.cert_file is not None:
            raise ValueError("give cert_label (in the token) or cert_file, not both")
        return self

    @property
    def pin(self) -> SecretRef:
        return SecretRef(self.pin_env, self.pin_file)


class KeyConfig(Section):
    """A signing or decryption identity: files (``connector.trust.keys.KeySource``) or, for
    signing, a key in a token (``pkcs11:``, see :class:`Pkcs11KeyConfig`)."""

    key: ConfigPath | None = None  # PEM/DER private key, or a PKCS#12 file (.p12/.pfx)
    cert: ConfigPath | None = None
    chain: list[ConfigPath] = Field(default_factory=list)
    password_env: EnvName | None = None
    password_file: ConfigPath | None = None
    pkcs11: Pkcs11KeyConfig | None = None  # instead of key/cert/password

    @model_validator(mode="after")
    def _complete(self) -> KeyConfig:
        one_of(self.password_env, self.password_file, "password", required=False)
        if self.pkcs11 is not None:
            if self.key is not None or self.cert is not None or self.password.given:
                raise ValueError("a pkcs11 key takes no key, cert or password (use "
                                 "pkcs11.cert_label/cert_file and pkcs11.pin_env/pin_file)")
            return self
        if self.key is None:
            raise ValueError("give key (a key file) or pkcs11 (a key in a token)")
        if self.cert is None and self.key.suffix.lower() not in (".p12", ".pfx"):
            raise ValueError("cert is required unless key is a PKCS#12 file (.p12/.pfx)")
        return self

    @property
    def password(self) -> SecretRef:
        return SecretRef(self.password_env, self.password_file)


class StampConfig(Section):
    visible: bool = True
    page: int = -1  # -1: the last page
    font_file: ConfigPath | None = None  # TrueType/OpenType font for Vietnamese text


class PdfPolicyConfig(Section):
    """``connector.trust.pdf_policy.PdfPolicy`` for one direction."""

    main_requires_personal: bool = True
    main_requires_seal: bool = True  # outbound: add it; inbound: must carry it
    attachments_require_seal: bool = True  # outbound: add it; inbound: must carry it
    seal_must_match_sender: bool = False  # inbound
    stamp: StampConfig = StampConfig()  # outbound


class PdfPolicies(Section):
    outbound: PdfPolicyConfig = PdfPolicyConfig()
    inbound: PdfPolicyConfig = PdfPolicyConfig()


class XmlSignaturePolicy(Section):
    """Packages without a verifiable XML signature (the QCVN placeholder, or none at all).

    Accepting them lets peers that only sign their PDFs through; a document is then still
    required to carry a signed PDF (its legal signature), and a status without any signature
    is taken only from the OrganIds listed in ``unsigned_status_from``.
    """

    legacy_placeholder: Literal["accept", "refuse"] = "accept"  # QCVN-namespace Signature only
    unsigned: Literal["accept", "refuse"] = "refuse"  # no signature element at all
    unsigned_status_from: list[OrganId] = Field(default_factory=list)


class PeerBindingConfig(Section):
    """How one peer's certificates are bound to its OrganId (``connector.trust.binding``)."""

    organ_id_in_certificate: bool = True  # the organizationIdentifier names the OrganId
    pinned_sha256: list[str] = Field(default_factory=list)  # certificate or public-key SHA-256
    pinned_certificates: list[ConfigPath] = Field(default_factory=list)  # PEM/DER files
    issued_names: list[str] = Field(default_factory=list)  # O= / CN= as the CA issues it

    @field_validator("pinned_sha256")
    @classmethod
    def _fingerprints(cls, values: list[str]) -> list[str]:
        for value in values:
            clean = value.replace(":", "").strip().lower()
            if len(clean) != 64 or any(c not in "0123456789abcdef" for c in clean):
                raise ValueError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
        return values


class SenderBindingConfig(Section):
    """The trust policy on receipt: what proves a sender (README "Trust policy on receipt")."""

    # A package whose signers no rule binds to any OrganId: deliver it marked
    # sender_unverified (default), or refuse it.
    when_unbound: Literal["deliver_unverified", "refuse"] = "deliver_unverified"
    organ_id_in_certificate: bool = True  # for peers without an entry below
    peers: dict[OrganId, PeerBindingConfig] = Field(default_factory=dict)


class TrustConfig(Section):
    seal: KeyConfig  # the organisation's seal: PDF seals
    xml_signer: KeyConfig | None = None  # the package XML-DSig; None: the seal identity
    trust_dir: ConfigPath  # trust anchors and helper CA certificates (PEM files)
    crl_dir: ConfigPath | None = None
    revocation: Literal["soft-fail", "hard-fail", "require"] = "hard-fail"
    fetch_revocation: bool = False  # fetch CRLs/OCSP over the network
    fetch_timeout: Seconds = 10.0
    xml_signature: XmlSignaturePolicy = XmlSignaturePolicy()
    pdf: PdfPolicies = PdfPolicies()
    sender_binding: SenderBindingConfig = SenderBindingConfig()


class EncryptionConfig(Section):
    """Attachment encryption per destination; certificates by OrganId."""

    default: EncryptionPolicy = "when-possible"
    destinations: dict[OrganId, EncryptionPolicy] = Field(default_factory=dict)
    certificates: dict[OrganId, ConfigPath] = Field(default_factory=dict)
    certificates_dir: ConfigPath | None = None  # <OrganId>.pem files, besides the list above
    decryption_key: KeyConfig | None = None  # ours, for packages encrypted to us

    def policy_for(self, organ_id: str) -> EncryptionPolicy:
        return self.destinations.get(organ_id, self.default)

    def certificate_for(self, organ_id: str) -> Path | None:
        if organ_id in self.certificates:
            return self.certificates[organ_id]
        if self.certificates_dir is not None:
            candidate = self.certificates_dir / f"{organ_id}.pem"
            if candidate.is_file():
                return candidate
        return None


class OrganisationHub(Section):
    """An organisation's own hub account (the shared ``hub`` section's endpoint, TLS and
    wire; only the account differs). ``systemid`` is unused by an eDoc REST hub."""

    systemid: str = ""
    secret_env: EnvName | None = None
    secret_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _secret(self) -> OrganisationHub:
        one_of(self.secret_env, self.secret_file, "secret", required=True)
        return self

    @property
    def secret(self) -> SecretRef:
        return SecretRef(self.secret_env, self.secret_file)


class OrganisationEncryption(Section):
    """Overrides of the shared ``encryption`` policy for one organisation's documents."""

    default: EncryptionPolicy | None = None
    destinations: dict[OrganId, EncryptionPolicy] = Field(default_factory=dict)


class OrganisationConfig(Section):
    """One organisation this connector serves (README "Several organisations"): its OrganId,
    its own seal (file or token), encryption key, optionally its own hub account, and
    overrides of the shared defaults."""

    organ_id: OrganId
    name: str = Field(min_length=1, max_length=200)
    seal: KeyConfig  # PDF seals and, unless xml_signer, the package XML signature
    xml_signer: KeyConfig | None = None
    decryption_key: KeyConfig | None = None  # for packages encrypted to this organisation
    hub: OrganisationHub | None = None  # None: the shared hub account
    stamp: StampConfig | None = None  # None: trust.pdf.outbound.stamp
    encryption: OrganisationEncryption = OrganisationEncryption()

    @property
    def signer(self) -> KeyConfig:
        return self.xml_signer or self.seal


def _organisations_defaults(data: object) -> object:
    """With ``organisations`` given, ``agency`` (the platform's own organisation, named where
    one must be: logs, the worker id) defaults to the first listed, and ``trust.seal`` /
    ``encryption.decryption_key`` to that organisation's keys; giving them besides is an
    ambiguity refused with its reason."""
    if not isinstance(data, dict) or not data.get("organisations"):
        return data
    listed = data["organisations"]
    if not isinstance(listed, list) or not all(isinstance(o, dict) for o in listed):
        return data
    data = dict(data)
    agency = data.get("agency")
    if agency is None:
        first = listed[0]
        data["agency"] = {"organ_id": first.get("organ_id"), "name": first.get("name")}
        agency = data["agency"]
    # An agency not listed is named by the after-validator; the first one's keys meanwhile.
    own = next((o for o in listed if isinstance(agency, dict)
                and o.get("organ_id") == agency.get("organ_id")), listed[0])
    trust = data.get("trust")
    if isinstance(trust, dict):
        for key in ("seal", "xml_signer"):
            if key in trust:
                raise ValueError(f"trust.{key} is given besides organisations: each organisation's "
                                 f"keys are under organisations[].{key}; remove trust.{key}")
        data["trust"] = {**trust, "seal": own.get("seal"),
                         **({"xml_signer": own["xml_signer"]} if own.get("xml_signer") else {})}
    encryption = data.get("encryption") or {}
    if isinstance(encryption, dict):
        if "decryption_key" in encryption:
            raise ValueError("encryption.decryption_key is given besides organisations: each "
                             "organisation's key is organisations[].decryption_key")
        if own.get("decryption_key"):
            data["encryption"] = {**encryption, "decryption_key": own["decryption_key"]}
    return data


class WorkersConfig(Section):
    pool_size: int = Field(default=0, ge=0)  # 0: one per CPU core
    kind: Literal["process", "thread"] = "process"

    def effective_size(self) -> int:
        return self.pool_size or os.cpu_count() or 1


class RetryConfig(Section):
    """``connector.daemon.retry.RetryPolicy``."""

    max_attempts: int = Field(default=8, ge=1)
    base_delay: Seconds = 2.0
    max_delay: Seconds = 900.0
    jitter: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_delay < self.base_delay:
            raise ValueError("max_delay must be at least base_delay")
        return self


class PollingConfig(Section):
    hub_interval: Seconds = 5.0  # between inbox polls (documents and statuses)
    local_wait: Seconds = 1.0  # longest wait for local records in one fetch
    sender_interval: Seconds = 1.0  # between looks for due packages when idle
    lease_seconds: Seconds = 120.0  # a claimed package returns if its sender dies


class MetricsConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class DeadlinesConfig(Section):
    """R6: send the day of signing, at the latest the next working morning."""

    # Vietnam's public holidays (Tết, Giỗ Tổ Hùng Vương …) from the `holidays` package.
    public_holidays: bool = True
    days_off: list[dt.date] = Field(default_factory=list)  # each year's swapped days off
    working_days: list[dt.date] = Field(default_factory=list)  # make-up working days (Sat)
    holidays: list[dt.date] = Field(default_factory=list)  # more days off (older key)
    weekend: list[int] = Field(default_factory=lambda: [6, 7])  # ISO weekdays: 6 Sat, 7 Sun
    next_morning_until: dt.time = dt.time(12, 0)

    @model_validator(mode="after")
    def _off_or_working(self) -> DeadlinesConfig:
        both = sorted(set(self.days_off + self.holidays) & set(self.working_days))
        if both:
            raise ValueError(
                f"{', '.join(d.isoformat() for d in both)} listed both as a day off and as a "
                "working day (deadlines.days_off / holidays vs deadlines.working_days)"
            )
        return self

    @field_validator("next_morning_until", mode="before")
    @classmethod
    def _quoted_time(cls, value: object) -> object:
        if isinstance(value, int):
            raise ValueError(
                'write the time in quotes, e.g. "12:00" (unquoted, YAML reads a number)'
            )
        return value

    @field_validator("weekend")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day not in range(1, 8) for day in value):
            raise ValueError("weekend days are ISO weekdays 1 (Monday) .. 7 (Sunday)")
        return value


class Config(Section):
    """A whole connector configuration, as loaded by ``connector.config.load_config``."""

    agency: AgencyConfig
    local: LocalConfig
    hub: HubConfig
    store: StoreConfig
    mappings: MappingsConfig
    trust: TrustConfig
    encryption: EncryptionConfig = EncryptionConfig()
    workers: WorkersConfig = WorkersConfig()
    retry: RetryConfig = RetryConfig()
    polling: PollingConfig = PollingConfig()
    metrics: MetricsConfig = MetricsConfig()
    deadlines: DeadlinesConfig = DeadlinesConfig()
    shutdown_timeout: Seconds = 30.0
    # Several organisations served by this connector (empty: ``agency`` alone, one organisation).
    organisations: list[OrganisationConfig] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="before")
    @classmethod
    def _organisation_keys(cls, data: object) -> object:
        return _organisations_defaults(data)

    @model_validator(mode="after")
    def _organisations_consistent(self) -> Config:
        seen: set[str] = set()
        for organisation in self.organisations:
            if organisation.organ_id in seen:
                raise ValueError(f"organisations: {organisation.organ_id} is listed twice")
            seen.add(organisation.organ_id)
            own_hub = organisation.hub
            if own_hub is not None and self.hub.type == "vxp" and not own_hub.systemid:
                raise ValueError(f"organisations: {organisation.organ_id}: a vxp hub account "
                                 "needs its systemid")
        if self.organisations and self.agency.organ_id not in seen:
            raise ValueError(f"agency {self.agency.organ_id} is not one of the organisations: "
                             "list it there (or omit agency: the first organisation is taken)")
        return self

    _source: Path | None = PrivateAttr(default=None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> Path | None:
        """The file this configuration was loaded from."""
        return self._source

    def line_of(self, key: str) -> int | None:
        """The line of a dotted key (or of its nearest written parent) in the source file."""
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key.rpartition(".")[0]
        return None

    @property
    def xml_signer(self) -> KeyConfig:
        return self.trust.xml_signer or self.trust.seal
