"""Building the organisations registry of a connector serving several organisations.

From ``organisations:`` in the configuration, each organisation gets its own PDF stage (its
seal key source: a file or a token key, opened lazily in each worker process), its own XML
signer, its own encryption adapter (its decryption key, its policy overrides), its own
mapping adapter (its identity as From of its statuses) and its own hub transport when it has
an account of its own (else the shared one). A key file that cannot be loaded makes only its
organisation wait (logged, ``keys`` down), never the connector. This module wires; it must
not process messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from connector.config_schema import Config, OrganisationConfig
from connector.daemon import wiring
from connector.daemon.adapters import MappingAdapter, PdfAdapter, SignerAdapter
from connector.daemon.organisation_metrics import OrganisationCounters
from connector.daemon.organisations import Organisation, Organisations
from connector.edxml.model import Organization
from connector.errors import ConfigurationError
from connector.interconnect.base import HubTransport
from connector.local.base import RecordLimits
from connector.mapping import MappingSet, load_directory
from connector.metrics import ConnectorMetrics
from connector.trust.pkcs11_keys import TokenKeySource
from connector.trust.truststore import TrustStore

log = logging.getLogger("connector.wiring")


def identity(config: Config, organisation: OrganisationConfig) -> Organization:
    """The organisation as From: the directory's entry when it has one, else its name."""
    if config.agency.directory is not None:
        found = load_directory(config.agency.directory).by_organ_id(organisation.organ_id)
        if found is not None:
            return found
    return Organization(organisation.organ_id, organ_name=organisation.name)


def organisation_config(config: Config, organisation: OrganisationConfig) -> Config:
    """The configuration as the single-agency wiring would read it for one organisation."""
    outbound = config.trust.pdf.outbound
    if organisation.stamp is not None:
        outbound = outbound.model_copy(update={"stamp": organisation.stamp})
    trust = config.trust.model_copy(update={
        "seal": organisation.seal, "xml_signer": organisation.xml_signer,
        "pdf": config.trust.pdf.model_copy(update={"outbound": outbound}),
    })
    own = organisation.encryption
    encryption = config.encryption.model_copy(update={
        "default": own.default or config.encryption.default,
        "destinations": {**config.encryption.destinations, **own.destinations},
        "decryption_key": organisation.decryption_key,
    })
    hub = config.hub
    if organisation.hub is not None:
        hub = hub.model_copy(update={
            "systemid": organisation.hub.systemid or hub.systemid,
            "secret_env": organisation.hub.secret_env,
            "secret_file": organisation.hub.secret_file,
        })
    agency = config.agency.model_copy(update={"organ_id": organisation.organ_id,
                                              "name": organisation.name})
    return config.model_copy(update={"trust": trust, "encryption": encryption, "hub": hub,
                                     "agency": agency, "organisations": []})


def build_organisations(
    config: Config,
    *,
    mappings: MappingSet,
    trust: TrustStore,
    shared_hub: HubTransport,
    attachments_dir: Path | None,
    limits: RecordLimits,
    metrics: ConnectorMetrics,
    closers: list[Callable[[], None]],
) -> Organisations:
    members: dict[str, Organisation] = {}
    for organisation in config.organisations:
        own = organisation_config(config, organisation)
        agency = identity(config, organisation)
        seal = wiring.key_source(organisation.seal)
        signer = wiring.key_source(organisation.signer)
        for role, source in (("seal", seal), ("xml_signer", signer)):
            try:
                loaded = wiring._identity_if_present(f"{organisation.organ_id} {role}", source)
            except ConfigurationError as exc:  # this organisation waits, the others go on
                log.error("organisation %s: %s: %s", organisation.organ_id, role, exc.message)
                loaded = None
            if loaded is None:
                metrics.set_component_up("keys", False)
        try:
            crypto = wiring._encryption(own, trust)
        except ConfigurationError as exc:
            raise ConfigurationError(f"organisations: {organisation.organ_id}: {exc.message}",
                                     reason=exc.reason) from None
        hub = shared_hub
        account = ""
        if organisation.hub is not None:
            hub = wiring._hub(own)
            closers.append(hub.close)
            account = organisation.hub.systemid or organisation.organ_id
        members[organisation.organ_id] = Organisation(
            agency=agency,
            pdf=PdfAdapter(
                seal=seal,
                trust_dir=str(config.trust.trust_dir),
                crl_dir=str(config.trust.crl_dir) if config.trust.crl_dir else None,
                outbound=wiring.pdf_policy(own.trust.pdf.outbound),
                inbound=wiring.pdf_policy(own.trust.pdf.inbound),
            ),
            signer=SignerAdapter(signer),
            crypto=crypto,
            mapper=MappingAdapter(mappings, agency, attachments_dir=attachments_dir,
                                  limits=limits),
            hub=hub,
            account=account,
        )
    counters = OrganisationCounters(metrics.registry, members)
    return Organisations(members, counters=counters)


def token_sources(config: Config) -> list[tuple[str, TokenKeySource]]:
    """Every organisation's keys held in a token, named for /readyz."""
    found: list[tuple[str, TokenKeySource]] = []
    for organisation in config.organisations:
        for role, key in (("seal", organisation.seal), ("xml_signer", organisation.xml_signer)):
            source = wiring.key_source(key) if key is not None else None
            if isinstance(source, TokenKeySource):
                found.append((f"token_{role}_{organisation.organ_id}", source))
    return found
