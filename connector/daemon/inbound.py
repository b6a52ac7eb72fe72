"""Inbound: packages addressed to this agency, from the hub's inbox to the local side.

For each listed package: fetch → store raw (RECEIVED; a package seen before is recognised
by sender + DocumentId + kind + content hash) → verify the XML signature and use only the
verified bytes → validate → decrypt the attachments → verify the PDF signatures (worker
pool) → VERIFIED → map back and hand to the local side durably (DELIVERED) → acknowledge
``done`` to the hub (ACKNOWLEDGED) → queue status 01 to the sender (NOTIFIED). A package
that fails authenticity or integrity is REJECTED: acknowledged ``fail`` and answered with
status 02 carrying the reason (NĐ 30/2020 Điều 21.2.b). An authentic package our side
cannot take (it does not map back) is FAILED with the reason, unacknowledged, until an
operator fixes the cause and retries it. Each step is resumable from the stored state, so
a crash anywhere loses nothing and delivers nothing twice.

Status packages go through the same checks and then update the tracking of the document
and recipient they report on (``statuses``). It must not send documents (``sender`` does)
nor decide the wire format (``edxml``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

from connector.daemon import organisations, statuses
from connector.daemon.events import emit, error_fields, timed
from connector.daemon.ports import Services
from connector.edxml import check_package, peek
from connector.edxml.model import (
    BusinessDocType,
    EdocPackage,
    Package,
    StatusCode,
    StatusPackage,
)
from connector.edxml.problems import EdxmlError
from connector.edxml.summary import PackageSummary
from connector.errors import ConnectorError, PermanentError, TransientError, UnavailableError
from connector.interconnect.base import MESSAGE_TYPES, PendingItem
from connector.local.base import (
    H_HUB_ID,
    MAX_DEVIATIONS_CARRIED,
    DeliveryKind,
    with_deviations,
)
from connector.printable import printable
from connector.store.api import ErrorInfo, NewInbound, PackageFacts, SealUse, TrackedPackage
from connector.store.states import Direction, InboundState, PackageKind
from connector.trust import origin
from connector.trust.binding import Binding
from connector.trust.content import AttachmentChecks, main_content_id, main_first
from connector.trust.origin import Origin, Refusal

log = logging.getLogger("connector.inbound")
_S = InboundState

# What B writes about a package (logs, events, errors, delivery headers) quotes the package's
# own text (names, ContentIds, certificate subjects an attacker made): one line, escaped.
SAID_LIMIT = 1000


def escaped(exc: ConnectorError) -> ConnectorError:
    """The error with its message on one line, control and bidi characters escaped."""
    exc.args = (printable(exc.message, SAID_LIMIT), *exc.args[1:])
    return exc


# Refusals that are our side's problem, not the sender's: the package is FAILED for an
# operator (no ``fail`` to the hub, no 02), and goes through once the cause is fixed.
LOCAL_FAULTS = frozenset({"revocation_unknown", "decrypt_key_missing", "key_cert_mismatch"})


def _summary(raw: bytes, item: PendingItem) -> PackageSummary:
    try:
        return peek(raw)
    except (EdxmlError, PermanentError):
        return PackageSummary(item.message_type, item.sender, (item.recipient,), "")


@dataclass(frozen=True)
class Received:
    """A package that passed every check on receipt, with the verdict on its sender."""

    package: Package
    notes: list[str]
    origin: Origin
    checks: AttachmentChecks | None = None


def verify(services: Services, raw: bytes) -> tuple[Package, list[str]]:
    """Authenticity and integrity checks; returns the model built from verified bytes only."""
    received = authenticate(services, raw)
    return received.package, received.notes


def authenticate(services: Services, raw: bytes) -> Received:
    """Every check on receipt (``connector.trust.origin`` decides who sent it); raises
    ``Refusal`` (or another PermanentError) for a package that must not be taken."""
    with timed(services, "xml_verify"):
        verified = services.verifier.verify(raw)
    notes = list(verified.notes)
    with timed(services, "validate"):
        result = check_package(verified.data)
    if not result.ok or result.package is None:
        raise EdxmlError(result.problems, reason="schema")
    notes.extend(result.notes)
    package = result.package
    sender = package.from_.organ_id
    policy = services.verifier.origin
    origin.xml_binding(policy, verified.facts, sender)  # a signer of another organisation
    checks = None
    if isinstance(package, EdocPackage):
        origin.check_addressed((t.organ_id for t in package.to), _ours(services))
        with timed(services, "decrypt"):
            attachments = services.crypto.decrypt(package.attachments)
        main_id = main_content_id(verified.data)
        with timed(services, "pdf_verify"):
            checks = services.offload(services.pdf.check_inbound, attachments, main_id)
        notes.extend(checks.notes)
        package = dataclasses.replace(package, attachments=main_first(attachments, main_id))
    verdict = origin.decide(
        policy, kind=package.kind, claimed=sender, xml=verified.facts, checks=checks
    )
    notes.append(verdict.note(sender))
    return Received(package, notes, verdict, checks)


def check_seal_history(services: Services, package: TrackedPackage, received: Received) -> None:
    """A sealed main document is taken once per document: the seal index (first use of each
    seal, per receiving organisation) refuses the same seal under another sender or DocumentId
    unless the package's own XML signature by its sender vouches for the new metadata
    (``seal_replayed``: a genuine seal lifted into forged metadata), and the same document again
    unless it revokes, updates or replaces it (``document_repeated``: a replay whose bytes
    differ only where nothing is signed). Neither is answered: the replayer chose the From."""
    model, checks = received.package, received.checks
    main = checks.main if checks is not None else None
    if not isinstance(model, EdocPackage) or main is None:
        return
    sender = model.from_.organ_id
    for digest in main.seal_digests:
        first = services.store.remember_seal(
            SealUse(services.agency.organ_id, digest, sender, model.document_id, package.id)
        )
        if first.package_id == package.id:
            continue
        if first.sender == sender and first.document_id == model.document_id:
            if model.business_doc_type is BusinessDocType.NEW:
                raise Refusal(
                    f"the same document (sender, DocumentId and sealed main document) was "
                    f"received before as inbound package #{first.package_id}: not delivered again",
                    reason="document_repeated", sender_established=False, stage="replay",
                )
            continue
        if received.origin.via != "xml_signature":
            raise Refusal(
                f"the seal on the main document was first received in inbound package "
                f"#{first.package_id} under another "
                + ("sender" if first.sender != sender else "DocumentId")
                + ", and nothing signed by the sender vouches for this package's metadata: a "
                "sealed document lifted into another package",
                reason="seal_replayed", sender_established=False, stage="replay",
            )


def _ours(services: Services) -> tuple[str, ...]:
    """The OrganIds this connector receives for: its agency, and every organisation it serves
    when it serves several (``services.organisations``, where configured)."""
    registry = getattr(services, "organisations", None)
    if registry is not None and services.agency.organ_id in registry.ids():
        # Scoped to the organisation the hub delivered it to (``organisations``): a package
        # not addressed to that one is not taken for it, even if another of ours is in To
        # (that one gets a delivery of its own).
        return (services.agency.organ_id,)
    others = tuple(registry.ids()) if registry is not None else ()
    return (services.agency.organ_id, *others)


def receive(services: Services, item: PendingItem) -> None:
    """Carry one listed package as far as it can go now."""
    taken = take(services, item)
    if taken is not None:
        advance(*taken)


Taken = tuple[Services, TrackedPackage, bytes | None]


def take(services: Services, item: PendingItem, fetched: bytes | None = None) -> Taken | None:
    """A listed package fetched (unless ``fetched`` already) and stored (RECEIVED), or found
    stored before: what ``advance`` carries on with; None when it repeats a package
    (acknowledged here)."""
    known = services.store.find_inbound_by_hub_id(item.doc_id)
    if known is not None:
        return services, known, None
    raw = fetched if fetched is not None else services.hub.fetch(item.doc_id)
    summary = _summary(raw, item)
    kind = PackageKind.STATUS if summary.kind == "status" else PackageKind.EDOC
    # Several organisations: the one this delivery is for acts (its keys, its 01).
    services, ours, digest = organisations.inbound_facts(
        services, item.recipient, summary.to_organ_ids, hashlib.sha256(raw).hexdigest()
    )
    facts = PackageFacts(
        document_id=summary.document_id,
        sender=summary.from_organ_id or item.sender,
        recipients=ours or summary.to_organ_ids,
        priority=summary.priority,
        status_code=summary.status_code,
    )
    added = services.store.add_inbound(
        NewInbound(
            hub_id=item.doc_id,
            kind=kind,
            raw=raw,
            facts=facts,
            content_hash=digest,
            detail=f"listed by the hub as {printable(item.doc_id, 200)}",
        )
    )
    services.fault("after_store_received")
    if not added.is_new_work:
        # The same package listed again (a duplicate delivery): never hand it over twice.
        log.info(
            "hub id %s repeats inbound package #%d: acknowledged, not delivered again",
            printable(item.doc_id, 200),
            added.package.id,
        )
        services.hub.acknowledge(item.doc_id, True)
        services.store.add_event(added.package.id, "duplicate_acknowledged",
                                 printable(item.doc_id, 200))
        services.metrics.document("inbound", "duplicate")
        return None
    services.metrics.document("inbound", "received")
    return services, added.package, raw


def advance(
    services: Services,
    package: TrackedPackage,
    raw: bytes | None,
    checked: Received | PermanentError | None = None,
) -> None:
    """Drive one inbound package through its remaining states (resumable at each one).
    ``checked``: ``authenticate``'s outcome on these bytes when it ran already (``inbox``)."""
    services = organisations.acting_for(services, package.id)  # several organisations
    if raw is None:
        raw = services.store.raw(package.id)
        if raw is None:
            return
    state = package.inbound_state
    model: Package | None = None
    if state in (_S.RECEIVED, _S.VERIFIED):
        try:
            if isinstance(checked, PermanentError):
                raise checked
            received = checked if checked is not None else authenticate(services, raw)
            check_seal_history(services, package, received)
        except PermanentError as exc:
            escaped(exc)
            if exc.reason in LOCAL_FAULTS:
                _fail(services, package, exc)
            else:
                _reject(services, package, raw, exc)
            return
        model = received.package
        if state is _S.RECEIVED:
            _record_deviations(services, package, model)
            package = services.store.transition(
                package.id, _S.VERIFIED, event="verified",
                detail="; ".join(printable(n, 400) for n in received.notes)[:2000],
            )
            if received.origin.unverified:
                _mark_unverified(services, package, received)
        state = _S.VERIFIED
    if state is _S.VERIFIED:
        assert model is not None
        try:
            _deliver(services, package, received)
        except PermanentError as exc:
            _fail(services, package, exc)
            return
        services.fault("after_deliver")
        package = services.store.transition(package.id, _S.DELIVERED, event="delivered")
        state = _S.DELIVERED
    if state is _S.DELIVERED:
        services.hub.acknowledge(package.hub_id or "", True)
        services.fault("after_ack")
        package = services.store.transition(
            package.id, _S.ACKNOWLEDGED, event="acknowledged", detail="hub told done"
        )
        state = _S.ACKNOWLEDGED
    if state is _S.ACKNOWLEDGED and package.kind is PackageKind.EDOC:
        if model is None:
            model = statuses.parse_stored(services, package)
        if isinstance(model, EdocPackage):
            statuses.queue_reply(
                services,
                model,
                package,
                StatusCode.ARRIVED,
                "Đã đến - văn bản đã được hệ thống tiếp nhận tự động",
            )
        services.store.transition(package.id, _S.NOTIFIED, event="notified", detail="status 01")
    elif state is _S.REJECTED:
        _finish_rejection(services, package, raw, None)


def _mark_unverified(services: Services, package: TrackedPackage, received: Received) -> None:
    """A package taken although no rule binds its signer to its From (policy
    ``deliver_unverified``): counted, and an event saying who signed it."""
    signers = printable("; ".join(received.origin.unverified_signers), SAID_LIMIT)
    log.warning(
        "inbound package #%d: sender %s not verified (no binding known); signed by %s",
        package.id,
        printable(received.package.from_.organ_id, 100),
        signers,
    )
    services.metrics.document("inbound", "sender_unverified")
    services.store.add_event(package.id, "sender_unverified", f"signed by {signers}"[:2000])


def _deliver(services: Services, package: TrackedPackage, received: Received) -> None:
    model = received.package
    delivery_id = f"in-{package.id}"
    unverified = received.origin.unverified
    with timed(services, "deliver"):
        if isinstance(model, StatusPackage):
            if unverified:  # an unverified status is handed over, never applied to tracking
                log.warning(
                    "status %s from unverified sender %s not applied to tracking",
                    model.status_code.value,
                    printable(model.from_.organ_id, 100),
                )
            else:
                statuses.apply_incoming(services, model)
            delivery = services.mapper.status_to_delivery(model, delivery_id)
        else:
            delivery = services.mapper.package_to_delivery(model, delivery_id)
        warnings = [str(w) for w in model.deviations]
        delivery = with_deviations(delivery, warnings)
        if package.hub_id:  # the dedupe key of the local system (not our store's counter)
            delivery = dataclasses.replace(
                delivery, headers={**delivery.headers, H_HUB_ID: package.hub_id}
            )
        delivery = organisations.addressed(services, delivery)  # several organisations
        if unverified:
            marks = {
                "sender-verified": "no",
                "signed-by": printable("; ".join(received.origin.unverified_signers), 500),
            }
            delivery = dataclasses.replace(delivery, headers={**delivery.headers, **marks})
        services.sink.deliver(delivery)
    marked: dict[str, object] = {"sender_unverified": True} if unverified else {}
    # Events are small like the delivery headers: the first warnings and how many there were
    # (all of them are kept with the package: connector messages show).
    carried: dict[str, object] = (
        {"deviations": warnings[:MAX_DEVIATIONS_CARRIED], "deviation_count": len(warnings)}
        if warnings
        else {}
    )
    if delivery.kind is DeliveryKind.DOCUMENT:
        services.metrics.document("inbound", "delivered")
        emit(services, "inbound.delivered", package, **carried, **marked)
    else:
        assert isinstance(model, StatusPackage)
        services.metrics.status("received", model.status_code.value)
        emit(
            services,
            f"status.{model.status_code.value}",
            package,
            from_organ_id=model.from_.organ_id,
            description=model.description[:2000] if model.description else None,
            **carried,
            **marked,
        )


def _record_deviations(services: Services, package: TrackedPackage, model: Package) -> None:
    """Receive-level warnings (departures from QCVN 102 the package was accepted with): one
    ``deviation`` event each, kept with the package (``connector messages show``), counted."""
    for warning in model.deviations[:200]:
        services.store.add_event(package.id, "deviation", str(warning)[:1000])
        services.metrics.received_deviation(warning.element)
    if len(model.deviations) > 200:
        services.store.add_event(
            package.id, "deviation", f"... and {len(model.deviations) - 200} more"
        )


def _fail(services: Services, package: TrackedPackage, exc: PermanentError) -> None:
    """An authentic package our side cannot take (e.g. it does not map back): FAILED with the
    reason for an operator. Not the sender's fault, so no 02 and no ``fail`` to the hub: it
    stays listed there until the cause is fixed and the package retried."""
    log.error("inbound package #%d FAILED (%s): %s", package.id, exc.reason, exc.message)
    failed = services.store.transition(
        package.id, _S.FAILED, event="failed", error=ErrorInfo.of(exc)
    )
    services.metrics.document("inbound", "failed")
    emit(services, "inbound.failed", failed, **error_fields(exc))


def _reject(services: Services, package: TrackedPackage, raw: bytes, exc: PermanentError) -> None:
    log.warning("inbound package #%d rejected (%s): %s", package.id, exc.reason, exc.message)
    rejected = services.store.transition(
        package.id, _S.REJECTED, event="rejected", error=ErrorInfo.of(exc)
    )
    services.metrics.document("inbound", "rejected")
    emit(services, "inbound.rejected", rejected, **error_fields(exc))
    _finish_rejection(services, rejected, raw, exc)


# Refusals that answer no one: the package was not meant for us (the hub misrouted it).
# A replay is not answered either: whoever listed it chose the From we would answer.
NO_REPLY = frozenset({"not_addressed_to_us", "seal_replayed", "document_repeated"})


def _finish_rejection(
    services: Services, package: TrackedPackage, raw: bytes, exc: PermanentError | None
) -> None:
    services.hub.acknowledge(package.hub_id or "", False)
    reason = exc.reason if exc else (package.last_error.reason if package.last_error else "")
    detail = f"hub told fail ({reason})"
    if package.kind is PackageKind.EDOC and reason not in NO_REPLY:
        if _sender_established(services, raw, exc):
            # The 02 carries our reason code and our own words only, never text from the
            # package (an attacker could have chosen it to make us sign and send it).
            statuses.queue_rejection(services, package, raw, reason)
            detail += "; status 02 queued"
        else:
            log.warning(
                "inbound package #%d refused (%s): its sender was not established, no 02 sent",
                package.id,
                reason,
            )
            detail += "; no 02: the sender's identity was not established"
    services.store.transition(
        package.id, _S.REJECTION_NOTIFIED, event="rejection_notified", detail=detail[:500]
    )


def _sender_established(services: Services, raw: bytes, exc: PermanentError | None) -> bool:
    """Whether the refused package's From was bound to a signer before it was refused."""
    if isinstance(exc, Refusal):
        return _established_by(services, exc)
    try:
        if exc is None:  # resumed after a crash: decide again (rare, so the cost is fine)
            authenticate(services, raw)
            return True
        verified = services.verifier.verify(raw)
        sender = peek(verified.data).from_organ_id
        binding = origin.xml_binding(services.verifier.origin, verified.facts, sender)
    except Refusal as refusal:
        return _established_by(services, refusal)
    except (ConnectorError, EdxmlError):
        return False
    return binding is Binding.BOUND


def _established_by(services: Services, refusal: Refusal) -> bool:
    """A refusal's ``sender_established``, except that a main-document seal B has seen before
    establishes no one: a replayer could otherwise make B sign a 02 about any DocumentId it
    chose (one B accepted, say) to the seal's owner."""
    if not refusal.sender_established:
        return False
    for digest in refusal.seal_digests:
        if services.store.first_seal_use(digest) is not None:
            log.warning("refused package sealed by a seal received before: no 02 (replayed seal)")
            return False
    return True


@dataclass
class InboxAttempts:
    """Failed rounds per hub id, with back-off between them.

    A package that fails for a passing reason (hub or store hiccup: ``TransientError``) is
    retried with the retry policy's back-off for as long as it takes; one that keeps failing
    for another reason (a bug, an unexpected answer) is set aside after the attempt budget:
    FAILED for an operator when it is stored, skipped until restart when it is not.
    """

    counts: dict[str, int] = field(default_factory=dict)
    not_before: dict[str, float] = field(default_factory=dict)

    def due(self, doc_id: str, now: float) -> bool:
        return self.not_before.get(doc_id, 0.0) <= now

    def succeeded(self, doc_id: str) -> None:
        self.counts.pop(doc_id, None)
        self.not_before.pop(doc_id, None)


def poll_once(services: Services, attempts: InboxAttempts | None = None) -> int:
    """One look at the hub inbox; returns how many listed packages were handled."""
    attempts = InboxAttempts() if attempts is None else attempts
    handled = 0
    for message_type in MESSAGE_TYPES:
        for item in services.hub.pending(message_type):
            if not attempts.due(item.doc_id, time.time()):
                continue
            try:
                receive(services, item)
                attempts.succeeded(item.doc_id)
            except UnavailableError:
                raise
            except Exception as exc:
                _failed_round(services, item, exc, attempts)
            handled += 1
    return handled


def _failed_round(
    services: Services, item: PendingItem, exc: Exception, attempts: InboxAttempts
) -> None:
    count = attempts.counts.get(item.doc_id, 0) + 1
    attempts.counts[item.doc_id] = count
    delay = services.retry.delay(count)
    attempts.not_before[item.doc_id] = time.time() + delay
    if isinstance(exc, ConnectorError):
        escaped(exc)
        log.warning(
            "inbound %s %s not finished (%s, attempt %d, next in %.0fs): %s",
            item.message_type,
            printable(item.doc_id, 200),
            exc.kind,
            count,
            delay,
            exc.message,
        )
    else:
        log.exception(
            "unexpected error on inbound %s %s (attempt %d)", item.message_type,
            printable(item.doc_id, 200), count,
        )
    if isinstance(exc, TransientError) or count < services.retry.max_attempts:
        return
    error = PermanentError(
        f"gave up after {count} attempts: {printable(str(exc), SAID_LIMIT)}",
        reason=getattr(exc, "reason", "internal_error"),
        stage=getattr(exc, "stage", None) or "inbound",
    )
    known = services.store.find_inbound_by_hub_id(item.doc_id)
    if known is not None and known.inbound_state in (_S.RECEIVED, _S.VERIFIED):
        _fail(services, known, error)
    else:
        log.error(
            "inbound %s %s set aside until restart: %s",
            item.message_type,
            printable(item.doc_id, 200),
            error.message,
        )
    attempts.not_before[item.doc_id] = float("inf")


# Past the hand-over to the local side the hub may no longer list a package (it took our
# ``done``/``fail`` but the answer was lost), so nothing but the store brings it back.
_AFTER_HANDOVER = frozenset({_S.DELIVERED, _S.ACKNOWLEDGED, _S.REJECTED})


def resume(services: Services, states: frozenset[InboundState] | None = None) -> None:
    """Carry on the packages left mid-way (all after a restart; else those in ``states``)."""
    for package in services.store.to_resume(Direction.INBOUND, limit=1000):
        if states is not None and package.inbound_state not in states:
            continue
        if services.organisations is not None and not organisations.in_inbox(services, package.id):
            continue  # another hub account's inbox carries it on
        try:
            advance(services, package, None)
        except UnavailableError:
            raise
        except Exception as exc:  # one package must not stop the others, nor the daemon
            log.warning("inbound package #%d not resumed yet: %s", package.id,
                        printable(str(exc), SAID_LIMIT))


DUTY_ASK_INTERVAL = 2.0  # seconds between a standby replica's asks for the inbox duty


def inbound_loop(services: Services, stop: threading.Event) -> None:
    """Worker: poll the hub inbox until stopped, several packages checked at once (``inbox``)."""
    from connector.daemon.inbox import inbound_loop as windowed

    windowed(services, stop)


def _component_of(error: ConnectorError) -> str:
    """Which dependency an error came from, for the component gauge and the log."""
    if error.reason.startswith("store"):
        return "store"
    # A token out or a key unusable (one organisation alone: its 01 cannot be signed): the
    # keys are down, not the hub.
    if error.reason.startswith(("token_", "key_")):
        return "keys"
    if error.reason.startswith(("broker", "unroutable", "spool")) or error.stage == "deliver":
        return "broker"
    return "hub"
