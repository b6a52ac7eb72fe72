"""Several organisations served by one connector: which one a record or a delivery is for,
and the parts (keys, identity, hub account, mapping) that act for it.

The wiring builds an :class:`Organisations` registry (OrganId → :class:`Organisation`) from
``organisations:`` in the configuration. The pipelines ask it once per item: outbound at
intake (:func:`scope_record`, then :func:`scope_package` once the record is mapped), inbound
once per hub delivery (:func:`scope_delivery`, the organisation the hub delivered it to), the
sender per package (:meth:`Organisations.hub_for`, by the package's From). What they get is
the shared ``Services`` with the organisation's own parts put in: a document of X is sealed
and signed by X's keys only, since no other keys are reachable from X's services.

A record names its organisation by the AMQP header ``x-organ-id``, the spool subfolder
``outbound/<OrganId>/`` or its mapped From; an organisation that is not configured, or
two names that disagree, refuse the record with the reason. This module resolves and
scopes; it must not process messages nor load keys (the adapters load them lazily, each
worker process its own).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connector.daemon.organisation_metrics import OrganisationCounters, OrganisationMetrics
from connector.daemon.ports import Mapper, PackageSigning, PayloadCrypto, PdfStage, Services
from connector.edxml.model import Organization, Package
from connector.errors import ConnectorError, PermanentError, UnavailableError
from connector.interconnect.base import HubTransport
from connector.local.base import H_ORGANISATION, LocalDelivery, LocalRecord

T = TypeVar("T")

RECORD_HEADER = "x-organ-id"  # on a record (AMQP header): the organisation it is sent for
DELIVERY_HEADER = H_ORGANISATION  # on a delivery: the organisation it is delivered to
# A spool subfolder in the QĐ 20/2020 OrganId form names an organisation, not a mapping.
_ORGAN_FOLDER = re.compile(r"^[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9A-Z]{2}$")


@dataclass
class Organisation:
    """One organisation's own parts; the PDF stage is picklable (key sources, not keys)."""

    agency: Organization
    pdf: PdfStage
    signer: PackageSigning
    crypto: PayloadCrypto
    mapper: Mapper
    hub: HubTransport
    account: str  # the hub account it uses ("" the shared one)

    @property
    def organ_id(self) -> str:
        return self.agency.organ_id


@dataclass
class Organisations:
    """The organisations of a connector, by OrganId."""

    members: dict[str, Organisation]
    counters: OrganisationCounters | None = None  # per-organisation metrics
    # Organisations whose keys are unavailable right now (a token out): their documents
    # wait in the store (ACCEPTED) and are prepared once the keys are back.
    waiting: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ids(self) -> tuple[str, ...]:
        return tuple(self.members)

    def get(self, organ_id: str) -> Organisation | None:
        return self.members.get(organ_id)

    def hub_for(self, organ_id: str) -> HubTransport | None:
        member = self.members.get(organ_id)
        return member.hub if member is not None else None

    def accounts(self) -> list[tuple[HubTransport, tuple[str, ...]]]:
        """Each hub account once, with the organisations it serves (its inbox)."""
        found: dict[str, tuple[HubTransport, list[str]]] = {}
        for member in self.members.values():
            found.setdefault(member.account, (member.hub, []))[1].append(member.organ_id)
        return [(hub, tuple(ids)) for hub, ids in found.values()]

    def set_waiting(self, organ_id: str, reason: str | None) -> None:
        with self._lock:
            if reason is None:
                self.waiting.pop(organ_id, None)
            else:
                self.waiting[organ_id] = reason


class OrganisationWaiting(UnavailableError):
    """One organisation's keys are unavailable (its token is out): its documents wait, the
    other organisations' do not."""

    def __init__(self, organ_id: str, cause: ConnectorError) -> None:
        super().__init__(f"organisation {organ_id}: {cause.message}", reason=cause.reason,
                         stage=cause.stage)
        self.organ_id = organ_id


class _SharedPool(Executor):
    """The base services' worker pool seen from a scoped copy: a pool rebuilt after a worker
    died is rebuilt for everyone, not in one copy only."""

    def __init__(self, base: Services) -> None:
        self._base = base

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._base.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the base's pool is shut down by the runtime

    def rebuild(self) -> Executor:
        base = self._base
        if base.pool_factory is not None:
            old, base.pool = base.pool, base.pool_factory()
            old.shutdown(wait=False, cancel_futures=True)
        return self


def scoped(services: Services, member: Organisation) -> Services:
    """The services acting for one organisation (its keys, identity, mapping, hub account,
    and metrics counting under its OrganId)."""
    pool = _SharedPool(services)
    metrics = services.metrics
    if isinstance(metrics, OrganisationMetrics):
        metrics = metrics.shared
    registry = services.organisations
    if registry is not None and registry.counters is not None:
        metrics = OrganisationMetrics(metrics, registry.counters, member.organ_id)
    return dataclasses.replace(
        services,
        agency=member.agency,
        pdf=member.pdf,
        signer=member.signer,
        crypto=member.crypto,
        mapper=member.mapper,
        hub=member.hub,
        pool=pool,
        pool_factory=pool.rebuild,
        metrics=metrics,
    )


def _unknown(organ_id: str, where: str, registry: Organisations) -> PermanentError:
    served = registry.ids()
    shown = ", ".join(served[:5]) + (f" and {len(served) - 5} more" if len(served) > 5 else "")
    return PermanentError(
        f"{where} names organisation {organ_id[:60]!r}, which this connector does not serve "
        f"(configured: {shown}); add it under organisations: or correct the record",
        reason="unknown_organisation",
        stage="intake",
    )


def record_hint(record: LocalRecord) -> tuple[str | None, str]:
    """The organisation a record names before mapping (header or spool subfolder), and where."""
    for name, value in record.headers.items():
        if name.lower() == RECORD_HEADER and value.strip():
            return value.strip(), f"record header {RECORD_HEADER}"
    if record.mapping is not None and _ORGAN_FOLDER.match(record.mapping):
        return record.mapping, f"spool subfolder {record.mapping}/"
    return None, ""


def scope_record(services: Services, record: LocalRecord) -> tuple[Services, LocalRecord]:
    """Before mapping: the services of the organisation the record names (header or spool
    subfolder), else the services unchanged (its mapped From decides, ``scope_package``).
    An organisation subfolder is not a mapping name: the record gets the default mapping."""
    registry = services.organisations
    if registry is None:
        return services, record
    organ_id, where = record_hint(record)
    if organ_id is None:
        return services, record
    if where.startswith("spool"):
        record = dataclasses.replace(record, mapping=None)
    member = registry.get(organ_id)
    if member is None:
        raise _unknown(organ_id, f"record {record.record_id!r}: {where}", registry)
    return scoped(services, member), record


def scope_package(services: Services, record: LocalRecord, package: Package) -> Services:
    """After mapping: the services of the package's From, which must be one of ours and agree
    with what the record named (header or subfolder)."""
    registry = services.organisations
    if registry is None:
        return services
    sender = package.from_.organ_id
    named, where = record_hint(record)
    if named is not None and named != sender:
        raise PermanentError(
            f"record {record.record_id!r}: {where} names organisation {named[:60]!r} but the "
            f"record's issuing organisation (From) is {sender}; a record is sent by one "
            "organisation",
            reason="organisation_mismatch",
            stage="intake",
        )
    member = registry.get(sender)
    if member is None:
        raise _unknown(sender, f"record {record.record_id!r}: its From", registry)
    return scoped(services, member)


def scope_delivery(services: Services, recipient: str) -> Services:
    """Inbound: the services of the organisation a hub delivery is for."""
    registry = services.organisations
    if registry is None:
        return services
    member = registry.get(recipient)
    if member is None:
        raise PermanentError(
            f"the hub delivered a package to {recipient!r}, not an organisation of this "
            "connector",
            reason="not_addressed_to_us",
            stage="receive",
        )
    return scoped(services, member)


def for_record(services: Services, record: LocalRecord) -> Services:
    """The services of the organisation a record names, if it names one we serve (else the
    services unchanged): for counting its refusal under that organisation."""
    registry = services.organisations
    organ_id, _ = record_hint(record)
    member = registry.get(organ_id) if registry is not None and organ_id else None
    return services if member is None else scoped(services, member)


def sending(services: Services, organ_id: str) -> Services:
    """The sender: the services of a package's From (its hub account, its metrics)."""
    registry = services.organisations
    member = registry.get(organ_id) if registry is not None else None
    return services if member is None else scoped(services, member)


def inboxes(services: Services) -> Iterator[tuple[Services, tuple[str, ...]]]:
    """Each hub account's inbox with the organisations it serves (one: the agency alone)."""
    registry = services.organisations
    if registry is None:
        yield services, (services.agency.organ_id,)
        return
    for hub, organ_ids in registry.accounts():
        member = registry.members[organ_ids[0]]
        yield dataclasses.replace(scoped(services, member), hub=hub), organ_ids


def recipient_of(services: Services, listed: str, to: Sequence[str]) -> str | None:
    """Which of our organisations a listed hub delivery is for: the one the hub names, else
    the only one of ours in the To list (an account serving one organisation)."""
    registry = services.organisations
    ours = registry.ids() if registry is not None else (services.agency.organ_id,)
    if listed in ours:
        return listed
    addressed = [organ_id for organ_id in to if organ_id in ours]
    return addressed[0] if len(addressed) == 1 else None


def inbound_facts(
    services: Services, listed: str, to: Sequence[str], digest: str
) -> tuple[Services, tuple[str, ...] | None, str]:
    """Inbound, several organisations: the services of the organisation a hub delivery is
    for, the recipients to store (that organisation: one inbound package per organisation
    it is delivered to) and a content hash distinct per organisation (so the same package
    delivered to two of ours is two packages, each delivered and answered once)."""
    registry = services.organisations
    if registry is None:
        return services, None, digest
    recipient = recipient_of(services, listed, to)
    if recipient is None or registry.get(recipient) is None:
        return services, None, digest
    return scope_delivery(services, recipient), (recipient,), f"{digest}@{recipient}"


def _organisation_of(services: Services, package_id: int) -> Organisation | None:
    registry = services.organisations
    if registry is None:
        return None
    for recipient in services.store.recipients(package_id):
        member = registry.get(recipient.organ_id)
        if member is not None:
            return member
    return None


def acting_for(services: Services, package_id: int) -> Services:
    """The services of the organisation a stored inbound package was delivered to."""
    member = _organisation_of(services, package_id)
    return services if member is None else scoped(services, member)


def in_inbox(services: Services, package_id: int) -> bool:
    """Whether a stored inbound package came through this inbox's hub account."""
    member = _organisation_of(services, package_id)
    return member is None or member.hub is services.hub


def addressed(services: Services, delivery: LocalDelivery) -> LocalDelivery:
    """A delivery naming the organisation it is for (header ``organ-id``: the AMQP header,
    and the spool's ``inbound/<OrganId>/`` folder), several organisations only."""
    if services.organisations is None:
        return delivery
    headers = {**delivery.headers, DELIVERY_HEADER: services.agency.organ_id}
    return dataclasses.replace(delivery, headers=headers)
