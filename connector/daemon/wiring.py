"""Building a running connector from its configuration: every part made once, at start.

Keys are loaded once, schemas compiled once, the trust store read once; the worker pool's
processes each load their own copy of the seal key. Anything that cannot be built is a
``ConfigurationError`` naming the part, raised before any message is touched. This module
wires; it must not process messages.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from connector import __version__
from connector.config_schema import AmqpConfig, Config, KeyConfig, PdfPolicyConfig
from connector.daemon import lifecycle
from connector.daemon.adapters import (
    MappingAdapter,
    PdfAdapter,
    SignerAdapter,
    VerifierAdapter,
)
from connector.daemon.ports import Services, Timing
from connector.daemon.retry import RetryPolicy
from connector.edxml.model import Attachment, Organization
from connector.errors import ConfigurationError, UnavailableError
from connector.health import Check, ComponentState, Health, folder_writable
from connector.interconnect.base import HubTransport
from connector.interconnect.credentials import Secret
from connector.interconnect.edoc_rest import EdocRestClient, EdocRestSettings
from connector.interconnect.vxp import VxpClient, VxpSettings
from connector.local.amqp_settings import AmqpSettings, AmqpTopology
from connector.local.base import Intake, RecordLimits, Sink
from connector.mapping import load_directory, load_mappings
from connector.metrics import ConnectorMetrics, StoreSnapshot
from connector.metrics_http import MetricsServer, MetricsSettings
from connector.store import open_configured_store
from connector.store.api import TrackingStore, state_mapping
from connector.trust import payload, pkcs11_token
from connector.trust.atrest import PayloadCipher
from connector.trust.binding import BindingRules, PeerBinding, SignerFacts
from connector.trust.cert_inventory import PeerCertificates, trust_snapshot
from connector.trust.keys import KeySource, SigningIdentity, load_certificates
from connector.trust.origin import OriginPolicy
from connector.trust.pdf_policy import PdfPolicy
from connector.trust.pdf_seal import StampOptions
from connector.trust.pkcs11_keys import TokenKeySource
from connector.trust.pkcs11_token import TokenSpec
from connector.trust.truststore import TrustStore
from connector.workcalendar import WorkingCalendar

log = logging.getLogger("connector.wiring")


def key_source(config: KeyConfig) -> KeySource | TokenKeySource:
    """Where an identity is loaded from: key files, or a key in a PKCS#11 token."""
    if config.pkcs11 is not None:
        token = config.pkcs11
        return TokenKeySource(
            TokenSpec(token.module, token.token_label, token.pin_env, token.pin_file),
            key_label=token.key_label,
            key_id=bytes.fromhex(token.key_id) if token.key_id else None,
            cert_label=token.cert_label,
            cert_file=token.cert_file,
            chain=tuple(config.chain),
        )
    assert config.key is not None  # KeyConfig requires key or pkcs11
    return KeySource(
        key=config.key,
        cert=config.cert,
        chain=tuple(config.chain),
        password_env=config.password_env,
        password_file=config.password_file,
    )


def pdf_policy(config: PdfPolicyConfig) -> PdfPolicy:
    return PdfPolicy(
        main_requires_personal=config.main_requires_personal,
        main_requires_seal=config.main_requires_seal,
        attachments_require_seal=config.attachments_require_seal,
        seal_must_match_sender=config.seal_must_match_sender,
        stamp=StampOptions(visible=config.stamp.visible),
    )


def origin_policy(config: Config, directory_path: Path | None = None) -> OriginPolicy:
    """The trust policy on receipt from ``trust.sender_binding`` and the directory's
    ``certificates`` blocks (``connector.trust.origin``)."""
    section = config.trust.sender_binding
    peers: list[PeerBinding] = []
    if directory_path is not None and directory_path.is_file():
        for organ_id, block in load_directory(directory_path).bindings.items():
            peers.append(PeerBinding(organ_id, block.organ_id_in_certificate,
                                     frozenset(block.pinned_sha256),
                                     frozenset(block.issued_names)))
    for organ_id, peer in section.peers.items():
        pins = set(peer.pinned_sha256)
        for path in peer.pinned_certificates:
            pins.update(
                SignerFacts.of(cert).certificate_sha256 for cert in load_certificates(path)
            )
        peers.append(PeerBinding(organ_id, peer.organ_id_in_certificate, frozenset(pins),
                                 frozenset(peer.issued_names)))
    return OriginPolicy(
        rules=BindingRules.of(peers, section.organ_id_in_certificate),
        when_unbound=section.when_unbound,
        seals_must_be_bound=config.trust.pdf.inbound.seal_must_match_sender,
        unsigned_status_from=frozenset(config.trust.xml_signature.unsigned_status_from),
    )


@dataclass
class EncryptionAdapter:
    """Encrypts attachments per destination policy; decrypts with our encryption key."""

    policies: Callable[[str], payload.EncryptionPolicy]
    certificates: Mapping[str, list[x509.Certificate]]  # leaf first, then its intermediates
    trust: TrustStore
    decryption: SigningIdentity | None = None
    intermediates: tuple[x509.Certificate, ...] = ()  # known CA certificates (our own chain)

    def encrypt_for(
        self, attachments: Sequence[Attachment], recipients: Sequence[str]
    ) -> tuple[Attachment, ...]:
        if not attachments:
            return ()
        destinations = []
        for organ_id in recipients:
            found = self.certificates.get(organ_id, [])
            leaf = found[0] if found else None
            chain = (*found[1:], *self.intermediates)
            policy = self.policies(organ_id)
            destinations.append(payload.Destination(organ_id, policy, leaf, chain))
        outcome = payload.encrypt_attachments(
            attachments,
            destinations,
            trust=self.trust,
            sender_certificate=self.decryption.certificate if self.decryption else None,
        )
        return outcome.attachments

    def decrypt(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
        if not any(payload.is_encrypted(a) for a in attachments):
            return tuple(attachments)
        if self.decryption is None:
            from connector.errors import PermanentError

            raise PermanentError(
                "the package is encrypted but no decryption key is configured",
                reason="decrypt_key_missing",
            )
        return payload.decrypt_attachments(
            attachments, self.decryption.private_key, self.decryption.certificate
        )


def _encryption(config: Config, trust: TrustStore) -> EncryptionAdapter:
    section = config.encryption
    # Re-read when a peer's certificate file changes (no restart to take a renewed one).
    certificates = PeerCertificates(config)
    if section.decryption_key is not None and section.decryption_key.pkcs11 is not None:
        raise ConfigurationError("encryption.decryption_key: keys in PKCS#11 tokens sign only; "
                                 "give the decryption key as a file", reason="key_unsupported")
    decryption = key_source(section.decryption_key).load() if section.decryption_key else None
    # Peers' certificates usually come without their intermediates; the CA certificates we
    # already hold (our own chains) complete the path.
    known = [cert for path in config.trust.seal.chain for cert in load_certificates(path)]
    if decryption is not None:
        known.extend(decryption.chain)
    return EncryptionAdapter(
        policies=lambda organ_id: payload.EncryptionPolicy(section.policy_for(organ_id)),
        certificates=certificates,
        trust=trust,
        decryption=decryption,
        intermediates=tuple(known),
    )


def _agency(config: Config) -> Organization:
    if config.agency.directory is not None:
        found = load_directory(config.agency.directory).by_organ_id(config.agency.organ_id)
        if found is not None:
            return found
    return Organization(config.agency.organ_id, organ_name=config.agency.name)


def _hub(config: Config) -> HubTransport:
    hub = config.hub
    secret = Secret(hub.secret.read(), source=hub.secret.describe())
    password = hub.tls.client_key_password
    common: dict[str, Any] = dict(
        endpoint=hub.endpoint,
        ca_file=str(hub.tls.ca_file) if hub.tls.ca_file else None,
        client_cert=str(hub.tls.client_cert) if hub.tls.client_cert else None,
        client_key=str(hub.tls.client_key) if hub.tls.client_key else None,
        client_key_password=Secret(password.read(), source=password.describe())
        if password.given
        else None,
        connect_timeout=hub.timeouts.connect,
        read_timeout=hub.timeouts.read,
        write_timeout=hub.timeouts.write,
        pool_timeout=hub.timeouts.pool,
        max_connections=hub.max_connections,
        allow_plain_http=hub.allow_plain_http,
        upload=hub.upload,
        max_answer_bytes=hub.max_answer_bytes,
    )
    if hub.type == "edoc-rest":
        return EdocRestClient(
            EdocRestSettings(
                organ_id=config.agency.organ_id, token=secret, **common, **hub.rest.model_dump()
            )
        )
    return VxpClient(VxpSettings(systemid=hub.systemid, secret=secret, **common))


def _local(
    config: Config, metrics: ConnectorMetrics, exclusive: bool = True
) -> tuple[Intake, Sink, Callable[[], None]]:
    if config.local.type == "amqp":
        from connector.local.amqp import AmqpLocalSide

        assert config.local.amqp is not None
        side = AmqpLocalSide(amqp_settings(config.local.amqp), metrics=metrics,
                             limits=record_limits(config))
        side.start()
        return side, side, side.close
    from connector.local.spool import SpoolFolder

    assert config.local.spool is not None
    spool = SpoolFolder.from_config(config.local.spool, exclusive=exclusive,
                                    limits=record_limits(config))
    metrics.local_side = "spool"  # its outages are the spool's, never "broker down"
    return spool, spool, spool.close


def record_limits(config: Config) -> RecordLimits:
    """``local.limits`` as the local side and the mappings use them."""
    return RecordLimits(**config.local.limits.model_dump())


def amqp_settings(section: AmqpConfig) -> AmqpSettings:
    """``AmqpSettings`` from the configuration: names get the prefix unless given in full."""
    defaults = AmqpTopology()
    names: dict[str, Any] = {}
    for item in dataclasses.fields(AmqpTopology):
        default = getattr(defaults, item.name)
        if isinstance(default, str) and section.topology.prefix:
            names[item.name] = section.topology.prefix + default
    names.update(
        {k: v for k, v in section.topology.model_dump().items() if v is not None and k != "prefix"}
    )
    password = section.password.read().decode("utf-8") if section.password.given else None
    return AmqpSettings(
        **section.settings_overrides(),  # type: ignore[arg-type]
        topology=dataclasses.replace(defaults, **names),
        password=password,
    )


def _pool_factory(config: Config) -> Callable[[], concurrent.futures.Executor]:
    size = config.workers.effective_size()
    if config.workers.kind == "thread":
        return lambda: concurrent.futures.ThreadPoolExecutor(size)

    def processes() -> concurrent.futures.Executor:
        # Spawned, not forked: a forked worker would inherit the spool lock and the store's
        # descriptors and, after a kill -9 of the daemon, keep the lock and block the restart.
        return concurrent.futures.ProcessPoolExecutor(
            size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=lifecycle.pool_process_started,
            initargs=(os.getpid(),),
        )

    return processes


@dataclass
class Runtime:
    config: Config
    services: Services
    metrics: ConnectorMetrics
    metrics_server: MetricsServer | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # one failing close must not hide the others
                log.warning("error while closing: %s", exc)


def build(
    config: Config,
    *,
    fault_hook: Callable[[str], None] | None = None,
    start_metrics: bool = True,
    exclusive_local: bool = True,
) -> Runtime:
    """Every part of a connector. ``exclusive_local=False`` (``connector check``) leaves the
    spool lock to the daemon that may be running."""
    metrics = ConnectorMetrics(version=__version__)
    closers: list[Callable[[], None]] = []
    cipher = PayloadCipher.from_sources(
        key_file=config.store.at_rest_key_file, key_env=config.store.at_rest_key_env
    )
    store = open_configured_store(config.store, cipher)  # SQLite file or PostgreSQL
    closers.append(store.close)
    metrics.set_component_up("store", True)
    agency = _agency(config)
    directory = config.agency.directory or config.mappings.dir / "directory.yaml"
    mappings = load_mappings(config.mappings.dir, directory, default=config.mappings.default)
    trust = TrustStore.from_dirs(
        config.trust.trust_dir,
        config.trust.crl_dir,
        revocation_mode=config.trust.revocation,
        fetch_revocation=config.trust.fetch_revocation,
        fetch_timeout=config.trust.fetch_timeout,
    )
    seal = key_source(config.trust.seal)
    xml_source = key_source(config.xml_signer)
    metrics.set_component_up("keys", True)  # loaded and usable (readiness probe)
    # A token that goes away takes "keys" down until it is back (its work waits meanwhile).
    closers.append(pkcs11_token.watch(lambda up: metrics.set_component_up("keys", up)))
    for role, source in (("seal", seal), ("xml_signer", xml_source)):
        try:
            identity = _identity_if_present(role, source)
        except ConfigurationError as exc:
            if not config.organisations:
                raise
            # Several organisations: the first one's unusable key makes its work wait only.
            log.error("%s of %s: %s", role, config.agency.organ_id, exc.message)
            identity = None
        if identity is None:
            metrics.set_component_up("keys", False)
        else:
            metrics.set_certificate_expiry(role, identity.certificate.not_valid_after_utc)
    encryption = _encryption(config, trust)
    if encryption.decryption is not None:
        metrics.set_certificate_expiry(
            "encryption", encryption.decryption.certificate.not_valid_after_utc
        )
    # Every certificate and CRL in use, read again at each scrape when its file changed.
    metrics.use_trust_source(lambda: trust_snapshot(config))
    hub = _hub(config)
    closers.append(hub.close)
    intake, sink, close_local = _local(config, metrics, exclusive=exclusive_local)
    closers.append(close_local)
    pool_factory = _pool_factory(config)
    pool = pool_factory()
    # Where records' claim-check files are read from: the spool root, or the broker side's
    # claim-check directory (shared with the agency software, as for received files).
    spool_dir = None
    if config.local.spool is not None:
        spool_dir = config.local.spool.root
    elif config.local.amqp is not None:
        spool_dir = config.local.amqp.claim_check_dir
    services = Services(
        agency=agency,
        store=store,
        hub=hub,
        intake=intake,
        sink=sink,
        mapper=MappingAdapter(mappings, agency, attachments_dir=spool_dir,
                              limits=record_limits(config)),
        pdf=PdfAdapter(
            seal=seal,
            trust_dir=str(config.trust.trust_dir),
            crl_dir=str(config.trust.crl_dir) if config.trust.crl_dir else None,
            outbound=pdf_policy(config.trust.pdf.outbound),
            inbound=pdf_policy(config.trust.pdf.inbound),
        ),
        crypto=encryption,
        signer=SignerAdapter(xml_source),
        verifier=VerifierAdapter(
            trust,
            config.trust.xml_signature.legacy_placeholder,
            config.trust.xml_signature.unsigned,
            frozenset(config.trust.xml_signature.unsigned_status_from),
            origin_policy(config, directory),
        ),
        pool=pool,
        pool_factory=pool_factory,
        metrics=metrics,
        retry=RetryPolicy(
            config.retry.max_attempts,
            config.retry.base_delay,
            config.retry.max_delay,
            config.retry.jitter,
        ),
        timing=Timing(
            poll_interval=config.polling.hub_interval,
            intake_timeout=config.polling.local_wait,
            sender_idle=config.polling.sender_interval,
            lease_seconds=config.polling.lease_seconds,
        ),
        zip_for=config.hub.zip_attachments.for_peer,
        calendar=_calendar(config),
        worker_id=f"{config.agency.organ_id}:{time.time_ns()}",
        fault_hook=fault_hook,
    )
    if config.organisations:  # several organisations: each acts with its own parts
        from connector.daemon.organisations_wiring import build_organisations

        services.organisations = build_organisations(
            config, mappings=mappings, trust=trust, shared_hub=hub, attachments_dir=spool_dir,
            limits=record_limits(config), metrics=metrics, closers=closers)
    closers.append(lambda: services.pool.shutdown(wait=False, cancel_futures=True))
    metrics.use_store_snapshot(lambda: _snapshot(store))
    runtime = Runtime(config, services, metrics, closers=closers)
    if start_metrics and config.metrics.enabled:
        server = MetricsServer(
            metrics,
            MetricsSettings(True, config.metrics.host, config.metrics.port),
            _health(config, metrics),
        )
        try:
            server.start()
        except OSError as exc:
            runtime.close()
            raise ConfigurationError(
                f"metrics: cannot listen on {config.metrics.host}:{config.metrics.port}: "
                f"{exc.strerror or exc} (metrics.port: another port, or 0 for any free one)",
                reason="metrics_address",
            ) from None
        runtime.metrics_server = server
        closers.append(server.stop)
    return runtime


def _calendar(config: Config) -> WorkingCalendar:
    """R6's working days: Vietnam's public holidays and this year's swaps."""
    deadlines = config.deadlines
    return WorkingCalendar.of(
        weekend=deadlines.weekend,
        days_off=[*deadlines.days_off, *deadlines.holidays],
        working_days=deadlines.working_days,
        public_holidays=deadlines.public_holidays,
        next_morning_until=deadlines.next_morning_until,
    )


def _health(config: Config, metrics: ConnectorMetrics) -> Health:
    """/readyz: the store, the local side, the hub, the keys and the certificates."""
    local = "spool" if config.local.spool is not None else "broker"
    health = Health(metrics, required=("store", local, "hub", "keys"))
    if config.local.spool is not None:
        health.add_check("spool", folder_writable(config.local.spool.root))
    for role, key in (("seal", config.trust.seal), ("xml_signer", config.trust.xml_signer)):
        source = key_source(key) if key is not None else None
        if isinstance(source, TokenKeySource):
            health.add_check(f"token_{role}", _token_check(source.token))
    if config.organisations:
        from connector.daemon.organisations_wiring import token_sources

        for name, token in token_sources(config):
            health.add_check(name, _token_check(token.token))
    return health


def _token_check(spec: TokenSpec) -> Check:
    """Readiness of a key in a token: the token answers (checked in this process, so that a
    token lost while the worker processes sealed shows here too)."""

    def check() -> ComponentState:
        up, detail = pkcs11_token.probe(spec)
        return ComponentState(up, detail)

    return check


def _identity_if_present(role: str, source: KeySource | TokenKeySource) -> SigningIdentity | None:
    """The identity; None (logged) when its token is absent right now: the daemon starts and
    the work needing the token waits for it. Key files must load (else ConfigurationError)."""
    try:
        return source.load()
    except UnavailableError as exc:
        log.warning("%s: %s; documents needing it wait for it", role, exc.message)
        return None


AT_RISK_WINDOW = 2 * 3600.0  # R6: a deadline this close counts as at risk


def _snapshot(store: TrackingStore) -> StoreSnapshot:
    now = time.time()
    counts = store.counts()
    outbox = sum(
        c.count
        for c in counts
        if c.direction.value == "out" and c.state.value in ("ACCEPTED", "READY")
    )
    late = store.count_past_deadline(now)
    return StoreSnapshot(
        outbox_packages=outbox,
        outbox_oldest_age_seconds=store.oldest_outbox_age(now) or 0.0,
        packages=state_mapping(counts),
        deadline_late=late,
        deadline_at_risk=max(store.count_past_deadline(now + AT_RISK_WINDOW) - late, 0),
        recipients_waiting={
            b.state.value: (b.count, max(0.0, now - b.oldest_since))
            for b in store.recipient_backlog()
        },
    )


def describe(runtime: Runtime) -> dict[str, Any]:
    """What ``connector check`` prints about a built runtime."""
    services = runtime.services
    return {
        "agency": f"{services.agency.organ_id} ({services.agency.organ_name})",
        **({"organisations": ", ".join(services.organisations.ids())}
           if services.organisations is not None else {}),
        "metrics": runtime.metrics_server.url if runtime.metrics_server else "off",
    }
