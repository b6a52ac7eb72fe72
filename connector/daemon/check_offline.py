"""The offline phases of ``connector check``: every problem of every part, without side effects.

Each phase loads what ``run`` would load (files and secrets present, schemas, mappings and
the organisation directory, keys, certificates, trust store, at-rest keys, the hub client's
TLS set-up, the broker settings, the store's schema) and turns each failure into a
:class:`~connector.config.ConfigProblem` that names the file and line that caused it: the
configuration line of the key for keys and certificates, the mapping file's own line for
mapping problems. A part whose inputs are already reported missing is not loaded again, so
one cause gives one problem.

This module is read-only: it must not create folders or stores, take the spool lock, open
network connections or start workers.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from connector.config import ConfigProblem, check_paths
from connector.config_schema import Config
from connector.errors import ConnectorError
from connector.trust.cert_inventory import Inventory, inventory

EXPIRY_WARNING_DAYS = 30
TRUST_FOLDER_ROLES = ("trust_anchor", "ca")  # certificates read from trust.trust_dir


@dataclass
class OfflineReport:
    problems: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # what it would run with
    inventory: Inventory | None = None

    def sorted_problems(self) -> list[ConfigProblem]:
        return sorted(self.problems, key=lambda p: (p.file, p.line or 0, p.key))


class _Collector:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.source = str(config.source or "configuration")
        self.report = OfflineReport()

    def add(self, key: str, message: str, *, file: str | None = None, line: int | None = None,
            warning: bool = False) -> None:
        where_line = line if file is not None else self.config.line_of(key)
        problem = ConfigProblem(file or self.source, where_line, key, message)
        (self.report.warnings if warning else self.report.problems).append(problem)

    def reported(self, prefix: str) -> bool:
        """A problem under this key (or a key under it) is already known."""
        return any(
            p.key == prefix or p.key.startswith(prefix + ".") or p.key.startswith(prefix + "_")
            for p in self.report.problems
        )

    def fact(self, label: str, value: str) -> None:
        self.report.facts.append((label, value))


def check_offline(config: Config, now: dt.datetime | None = None) -> OfflineReport:
    """Every problem that would stop ``run`` (or break messages later), and what it would use."""
    c = _Collector(config)
    c.report.problems.extend(check_paths(config))
    _agency(c)
    _schemas(c)
    _mappings(c)
    _keys(c)
    _certificates(c, now or dt.datetime.now(dt.UTC))
    _trust_store(c)
    _at_rest(c)
    _hub(c)
    _local(c)
    _store(c)
    _metrics(c)
    return c.report


def _agency(c: _Collector) -> None:
    from connector.mapping import load_directory
    from connector.mapping.yamlsource import MappingFileError

    agency = c.config.agency
    name = agency.name
    if agency.directory is not None and agency.directory.is_file():
        try:
            found = load_directory(agency.directory).by_organ_id(agency.organ_id)
        except MappingFileError:
            found = None  # reported with the mappings
        if found is not None:
            name = found.organ_name or name
        else:
            c.add("agency.organ_id",
                  f"{agency.organ_id} is not in the organisation directory {agency.directory}",
                  warning=True)
    c.fact("agency", f"{agency.organ_id} ({name})")


def _schemas(c: _Collector) -> None:
    from connector.edxml.schema import validate_package

    try:
        validate_package(b"<edXML xmlns='http://www.mic.gov.vn/TBT/QCVN_102_2016'/>")
    except Exception as exc:  # a missing or broken packaged schema: the installation is broken
        c.add("(schemas)", f"the edXML schemas cannot be loaded: {type(exc).__name__}: {exc} "
              "(reinstall the connector package)", file="connector/schemas", line=None)


def _mappings(c: _Collector) -> None:
    from connector.mapping import load_mappings
    from connector.mapping.yamlsource import MappingFileError, format_loc

    config = c.config
    if c.reported("mappings.dir") or c.reported("agency.directory"):
        return
    directory = config.agency.directory or config.mappings.dir / "directory.yaml"
    try:
        mappings = load_mappings(config.mappings.dir, directory, default=config.mappings.default)
    except MappingFileError as exc:
        for issue in exc.issues:
            message = f"{issue.message} — {issue.hint}" if issue.hint else issue.message
            if Path(issue.file) == config.mappings.dir:  # about the folder: the config's line
                c.add("mappings.default" if "default" in issue.message else "mappings.dir",
                      message)
            else:
                c.add(format_loc(issue.loc) or "(file)", message, file=issue.file,
                      line=issue.line)
        return
    except ConnectorError as exc:
        c.add("mappings.dir", exc.message)
        return
    names = sorted(mappings.formats)
    c.fact("mappings", f"{config.mappings.dir} ({', '.join(names) or '?'}; "
           f"default {config.mappings.default})")


def _keys(c: _Collector) -> None:
    from connector.daemon.wiring import key_source

    config = c.config
    keys = [("trust.seal", config.trust.seal)]
    if config.trust.xml_signer is not None:
        keys.append(("trust.xml_signer", config.trust.xml_signer))
    if config.encryption.decryption_key is not None:
        keys.append(("encryption.decryption_key", config.encryption.decryption_key))
    for index, organisation in enumerate(config.organisations):  # several organisations
        if organisation.organ_id != config.agency.organ_id:  # the agency's: trust.* above
            for role in ("seal", "xml_signer", "decryption_key"):
                key_config = getattr(organisation, role)
                if key_config is not None:
                    keys.append((f"organisations[{index}].{role}", key_config))
    if config.organisations:
        c.fact("organisations", ", ".join(f"{o.organ_id} ({o.name})"
                                          for o in config.organisations))
    for where, key in keys:
        if c.reported(where):
            continue
        try:
            key_source(key).load()
        except ConnectorError as exc:
            c.add(f"{where}.key", f"cannot load the key: {exc.message}")


def _certificates(c: _Collector, now: dt.datetime) -> None:
    found = inventory(c.config)
    c.report.inventory = found
    for problem in found.problems:
        if not c.reported(problem.key):
            c.add(problem.key, problem.message)
    # run starts with an old certificate kept in the trust folder beside a valid one and
    # nothing breaks (the valid one verifies): a warning; every one of them expired is not.
    folder = [cert for cert in found.certificates if cert.role in TRUST_FOLDER_ROLES]
    folder_usable = any(cert.days_left(now) >= 0 for cert in folder)
    for cert in found.certificates:
        days = cert.days_left(now)
        label = f"{cert.role} {cert.name}".strip()
        if days < 0:
            tolerated = cert.role in TRUST_FOLDER_ROLES and folder_usable
            c.add(cert.key, f"{label} certificate {cert.subject} expired on "
                  f"{cert.not_after:%Y-%m-%d %H:%M} UTC ({cert.path})", warning=tolerated)
        elif cert.not_before > now:
            c.add(cert.key, f"{label} certificate {cert.subject} is not valid before "
                  f"{cert.not_before:%Y-%m-%d %H:%M} UTC ({cert.path})")
        elif days < EXPIRY_WARNING_DAYS:
            c.add(cert.key, f"{label} certificate {cert.subject} expires in {days:.0f} days",
                  warning=True)
        c.fact(f"certificate {label}",
               f"{cert.subject}, notAfter {cert.not_after:%Y-%m-%d %H:%M} UTC "
               f"({days:.0f} days left)")
    for crl in found.crls:
        if crl.next_update is None:
            text = "no next update"
        else:
            hours = (crl.next_update - now).total_seconds() / 3600
            text = f"next update {crl.next_update:%Y-%m-%d %H:%M} UTC"
            if hours < 0 and c.config.trust.revocation != "soft-fail":
                c.add(crl.key, f"CRL {crl.path.name} of {crl.issuer} is out of date since "
                      f"{crl.next_update:%Y-%m-%d %H:%M} UTC: revocation checks will fail "
                      "(fetch a fresh CRL into trust.crl_dir)")
        c.fact(f"crl {crl.path.name}", f"{crl.issuer}, {text}")


def _trust_store(c: _Collector) -> None:
    from connector.trust.truststore import TrustStore

    trust = c.config.trust
    if c.reported("trust.trust_dir") or c.reported("trust.crl_dir"):
        return
    try:
        TrustStore.from_dirs(trust.trust_dir, trust.crl_dir)
    except ConnectorError as exc:
        c.add("trust.trust_dir", exc.message)


def _at_rest(c: _Collector) -> None:
    from connector.trust.atrest import PayloadCipher

    store = c.config.store
    if c.reported("store.at_rest_key"):
        return
    try:
        PayloadCipher.from_sources(key_file=store.at_rest_key_file, key_env=store.at_rest_key_env)
    except ConnectorError as exc:
        key = "store.at_rest_key_file" if store.at_rest_key_file else "store.at_rest_key_env"
        c.add(key, exc.message)


def _hub(c: _Collector) -> None:
    from connector.daemon.wiring import _hub as hub_client

    hub = c.config.hub
    secret = f"secret from {hub.secret.describe()}"
    account = f"account {hub.systemid}, " if hub.type == "vxp" else ""
    c.fact("hub", f"{hub.type} {hub.endpoint} ({account}{secret})")
    if c.reported("hub"):
        return
    try:
        hub_client(c.config).close()  # builds the TLS context: client key and CA files
    except ConnectorError as exc:
        c.add("hub.tls" if "TLS" in exc.message else "hub.endpoint", exc.message)
    except Exception as exc:  # an unexpected failure still belongs to this section
        c.add("hub", f"cannot set up the hub client: {type(exc).__name__}: {exc}")
    for index, organisation in enumerate(c.config.organisations):  # their own accounts
        if organisation.hub is None:
            continue
        where = f"organisations[{index}].hub"
        c.fact(f"hub {organisation.organ_id}", f"account {organisation.hub.systemid or '-'}, "
               f"secret from {organisation.hub.secret.describe()}")
        try:
            organisation.hub.secret.read()
        except ConnectorError as exc:
            c.add(f"{where}.secret_{'file' if organisation.hub.secret_file else 'env'}",
                  exc.message)


def _local(c: _Collector) -> None:
    local = c.config.local
    if local.type == "spool" and local.spool is not None:
        c.fact("local", f"spool folder {local.spool.root}")
        return
    if local.amqp is None or c.reported("local.amqp"):
        return
    from connector.daemon.wiring import amqp_settings
    from connector.local.amqp_connection import redacted_url

    try:
        settings = amqp_settings(local.amqp)
    except (ValueError, ConnectorError) as exc:
        c.add("local.amqp", getattr(exc, "message", str(exc)))
        return
    queue = settings.topology.outbound_queue
    c.fact("local", f"amqp {redacted_url(settings)} (records from {queue})")


def _store(c: _Collector) -> None:
    from connector.store.schema import SCHEMA_VERSION

    path = c.config.store.path
    if path is None:  # PostgreSQL: reached by check --online only
        c.fact("store", f"postgres (pool of {c.config.store.pool_size} per replica)")
        return
    if not path.exists():
        c.fact("store", f"sqlite {path} (does not exist yet: created at the first run)")
        return
    try:
        conn = read_only_sqlite(path)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            count = conn.execute("SELECT COUNT(*) FROM packages").fetchone()[0] if version else 0
        finally:
            conn.close()
    except sqlite3.Error as exc:
        c.add("store.path", f"cannot read the tracking store {path}: {exc}")
        return
    if version > SCHEMA_VERSION:
        c.add("store.path", f"the store {path} has schema version {version}, newer than this "
              f"connector's {SCHEMA_VERSION}: upgrade the connector")
        return
    c.fact("store", f"sqlite {path} ({count} packages, schema version {version})")


def read_only_sqlite(path: Path) -> sqlite3.Connection:
    """The store opened for reading without creating anything beside it.

    ``mode=ro`` alone still creates ``<store>-wal`` and ``<store>-shm`` beside a WAL store
    (owned by whoever runs check). When both exist (the daemon runs, or did not close) they
    are shared as they are; otherwise there is no write-ahead log to miss and the file is
    read as immutable, which creates nothing."""
    uri = path.resolve().as_uri()
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    mode = "mode=ro" if wal.exists() and shm.exists() else "mode=ro&immutable=1"
    return sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=5)


def _metrics(c: _Collector) -> None:
    metrics = c.config.metrics
    if metrics.enabled:
        c.fact("metrics", f"http://{metrics.host}:{metrics.port}/metrics")
    else:
        c.fact("metrics", "off (metrics.enabled: false)")
