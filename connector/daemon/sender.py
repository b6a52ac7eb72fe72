"""The sender: delivers READY packages to the hub, urgent first, with bounded retries.

Each round claims a few due packages under a lease (urgent first: priority 3, 2, 1, then 0,
then age — the store's order), sends the stored bytes unchanged, and settles each by the
typed error it raised: sent → SENT with the hub's id; permanent → FAILED with the reason;
transient → retried later with jittered back-off, the attempt counted; hub unavailable or
misconfigured → the package waits without losing an attempt, and the round stops until
the hub comes back. Claims are small so an urgent package never waits behind a backlog.

The worker (``sender_loop``) claims only as many as its in-flight window has room for: the
hub calls run in the window's threads (several at once on the hub client's kept-alive
connections, urgent first, one document's packages in order), each settled back in the
worker's thread. It waits on ``services.sender_bell``, rung when a package becomes READY.

It sends; it must not build or change packages.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial

from connector.daemon import organisations
from connector.daemon.events import emit, error_fields, flush
from connector.daemon.inflight import InflightWindow
from connector.daemon.ports import Services
from connector.daemon.retry import DependencyBackoff, Fate, decide
from connector.errors import ConfigurationError, ConnectorError, PermanentError, TransientError
from connector.logsetup import log_context
from connector.store.api import ErrorInfo, LeaseLost, TrackedPackage

log = logging.getLogger("connector.sender")

DRAIN_SECONDS = 20.0  # at stop: sends in flight are finished and settled within this


def _now(services: Services) -> float:
    return services.clock() if services.clock else time.time()


@dataclass(frozen=True)
class Claimed:
    """A claimed package with what sending it takes, read in the sender's thread."""

    package: TrackedPackage
    services: Services  # of the package's From (several organisations: its hub account)
    raw: bytes
    recipients: list[str]


def load(services: Services, package: TrackedPackage) -> Claimed | None:
    """The stored bytes and recipients of a claimed package; None when it has no bytes (it
    is FAILED here)."""
    raw = services.store.raw(package.id)
    if raw is None:
        error = PermanentError(f"package #{package.id} has no stored bytes", reason="no_payload")
        failed = services.store.mark_failed(package.id, ErrorInfo.of(error))
        emit(services, "outbound.failed", failed, **error_fields(error))
        return None
    recipients = [r.organ_id for r in services.store.recipients(package.id)]
    # Several organisations: the package's From sends (its hub account, its metrics).
    return Claimed(package, organisations.sending(services, package.sender), raw, recipients)


def transmit(claimed: Claimed) -> tuple[str, float]:
    """The hub call alone (any thread): the hub's id and how long it took."""
    services, package = claimed.services, claimed.package
    # Fencing: a package another replica took over meanwhile is left to that replica.
    if not services.store.hold_lease(
        package.id, services.worker_id, lease_seconds=services.timing.lease_seconds
    ):
        raise LeaseLost(package.id, services.worker_id, None)
    started = time.perf_counter()
    try:
        services.fault("before_send")
        hub_id = services.hub.send(
            claimed.raw,
            message_type=package.kind.value,
            sender=package.sender,
            to=claimed.recipients,
        )
    finally:
        services.metrics.observe_stage("send", time.perf_counter() - started)
    return hub_id, time.perf_counter() - started


def settle(claimed: Claimed, outcome: Future[tuple[str, float]], hub_backoff: DependencyBackoff
           ) -> bool:
    """Settle a send in the sender's thread; False when the hub looks down."""
    services, package = claimed.services, claimed.package
    try:
        hub_id, _ = outcome.result()
    except LeaseLost as exc:
        log.warning("package #%d not sent here: %s", package.id, exc.message)
        return True
    except ConnectorError as exc:
        return _settle_failure(services, package, exc, hub_backoff)
    except Exception as exc:  # a bug must not lose the package: a counted, bounded retry
        log.error("unexpected error sending package #%d", package.id, exc_info=exc)
        error = TransientError(f"unexpected {type(exc).__name__}: {exc}", reason="internal_error",
                               stage="send")
        return _settle_failure(services, package, error, hub_backoff)
    hub_backoff.succeeded()
    services.metrics.set_component_up("hub", True)
    services.metrics.send_attempt(package.kind.value)
    services.fault("after_send")
    try:
        sent = services.store.mark_sent(package.id, hub_id, owner=services.worker_id)
    except LeaseLost as exc:  # its holder sends the same bytes: the hub sees a resend
        log.warning("package #%d taken by the hub as %s, not recorded here: %s",
                    package.id, hub_id, exc.message)
        return True
    if package.kind.value == "status" and package.status_code:
        services.metrics.status("sent", package.status_code)
    else:
        services.metrics.document("outbound", "sent")
    emit(services, "outbound.sent", sent, recipients=claimed.recipients,
         attempts=package.attempts + 1)
    log.info("package #%d sent as hub id %s", package.id, hub_id)
    return True


def send_one(services: Services, package: TrackedPackage, hub_backoff: DependencyBackoff) -> bool:
    """Send one claimed package; False when the hub is down (stop this round)."""
    claimed = load(services, package)
    if claimed is None:
        return True
    outcome: Future[tuple[str, float]] = Future()
    try:
        outcome.set_result(transmit(claimed))
    except ConnectorError as exc:
        outcome.set_exception(exc)
    return settle(claimed, outcome, hub_backoff)


def _settle_failure(
    services: Services, package: TrackedPackage, exc: ConnectorError, hub_backoff: DependencyBackoff
) -> bool:
    services.metrics.send_attempt(package.kind.value, exc)
    if exc.reason == "hub_server_error":
        return _server_error(services, package, exc, hub_backoff)
    decision = decide(exc, package.attempts, services.retry)
    error = decision.error or exc
    info = ErrorInfo.of(error)
    if decision.fate is Fate.WAIT:
        delay = hub_backoff.failed()
        services.metrics.set_component_up("hub", False)
        if isinstance(exc, ConfigurationError):
            log.error("hub refused our configuration (not a message failure): %s", exc.message)
        else:
            log.warning("hub unavailable, waiting %.1fs: %s", delay, exc.message)
        # The package is not at fault: it stays due now, in its place in the urgency order,
        # and the hub's back-off (not the package's) decides when the next claim is made.
        # Dated later, an urgent package that met the outage would go after the ordinary
        # ones that never tried (R7).
        services.store.schedule_retry(package.id, info, _now(services), count_attempt=False)
        return False
    if decision.fate is Fate.RETRY:
        retried = services.store.schedule_retry(package.id, info, _now(services) + decision.delay)
        emit(
            services,
            "outbound.retry",
            retried,
            next_attempt_in=round(decision.delay, 1),
            **error_fields(error),
        )
        return True
    services.metrics.document("outbound", "failed")
    failed = services.store.mark_failed(package.id, info)
    log.warning("package #%d FAILED: %s", package.id, error.message)
    emit(services, "outbound.failed", failed, **error_fields(error))
    return True


def _server_error(
    services: Services, package: TrackedPackage, exc: ConnectorError, hub_backoff: DependencyBackoff
) -> bool:
    """HTTP 500-class answer: the hub is reachable but failed on this request, which may be
    this package's fault. The attempt counts, so a package the hub always chokes on ends
    FAILED instead of waiting forever; the round stops after the probe and the hub is given
    its back-off, so an outage answered with 500s costs a few attempts per round, bounded by
    the retry budget (``connector messages retry`` brings FAILED packages back).
    """
    delay = hub_backoff.failed()
    services.metrics.set_component_up("hub", False)
    counted = TransientError(exc.message, reason=exc.reason, stage=exc.stage or "send")
    decision = decide(counted, package.attempts, services.retry)
    if decision.fate is Fate.FAIL and decision.error is not None:
        services.metrics.document("outbound", "failed")
        failed = services.store.mark_failed(package.id, ErrorInfo.of(decision.error))
        log.warning("package #%d FAILED: %s", package.id, decision.error.message)
        emit(services, "outbound.failed", failed, **error_fields(decision.error))
        return False
    services.store.schedule_retry(
        package.id, ErrorInfo.of(counted), _now(services) + max(delay, decision.delay)
    )
    log.warning("hub server error on package #%d (attempt counted): %s", package.id, exc.message)
    return False


def send_round(services: Services, hub_backoff: DependencyBackoff) -> int:
    """Claim and send due packages once; return how many were claimed."""
    claimed = services.store.claim(
        services.worker_id, limit=services.timing.batch, lease_seconds=services.timing.lease_seconds
    )
    # After a failure that looks like the hub being down, one more package is tried as a
    # probe: if the hub takes it, it was not down, and the failing package is what it chokes
    # on (its next failure then counts). Without the probe one such package, urgent and so
    # always claimed first, would hold back everything behind it.
    probes = 1
    for index, package in enumerate(claimed):
        with log_context(package_id=package.id, document_id=package.document_id, stage="send"):
            sent = send_one(services, package, hub_backoff)
        if sent:
            continue
        if probes and index + 1 < len(claimed):
            probes -= 1
            continue
        for rest in claimed[index + 1 :]:
            services.store.release(rest.id, services.worker_id)
        break
    return len(claimed)


def sender_loop(services: Services, stop: threading.Event) -> None:
    """Worker: send due packages until stopped, several at once (``timing.inflight``) on the
    hub client's kept-alive connections, urgent first; a package made READY rings the sender
    (``services.sender_bell``), so it goes out at once rather than at the next look."""
    hub_backoff = DependencyBackoff(services.retry)
    window = InflightWindow(services.timing.inflight, "send", services.sender_bell)
    resume_at = 0.0  # the hub looked down: no new claims before

    def settled(claimed: Claimed, outcome: Future[tuple[str, float]]) -> None:
        nonlocal resume_at
        with log_context(package_id=claimed.package.id,
                         document_id=claimed.package.document_id, stage="send"):
            if not settle(claimed, outcome, hub_backoff) and hub_backoff.is_down:
                wait = min(services.retry.delay(hub_backoff.failures), 30.0)
                resume_at = max(resume_at, time.monotonic() + wait)

    try:
        while not stop.is_set():
            flush(services)
            window.settle(0)
            room = window.room()
            if hub_backoff.is_down:  # after the wait: one package, and one more as a probe
                room = min(room, 2) if time.monotonic() >= resume_at else 0
            claimed = []
            if room:
                claimed = services.store.claim(
                    services.worker_id, limit=room, lease_seconds=services.timing.lease_seconds
                )
            for package in claimed:
                loaded = load(services, package)
                if loaded is not None:
                    # One document's packages (its statuses) go out in their order.
                    window.submit(package.priority, partial(transmit, loaded),
                                  partial(settled, loaded), key=package.document_id or None)
            if not claimed or not window.room():
                idle = services.timing.sender_idle
                if hub_backoff.is_down:
                    idle = min(max(resume_at - time.monotonic(), 0.05), idle)
                window.settle(idle)
    finally:
        window.drain(DRAIN_SECONDS)
        window.close()
