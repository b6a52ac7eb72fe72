"""The inbound worker: the hub inbox polled, several received packages checked at once.

Each new listed package is fetched in the in-flight window (``inflight``; the hub's latency
overlaps), stored RECEIVED here (``inbound.take``), then checked in the window (XML
signature, schema, decryption in its threads, the PDF checks in the worker pool's
processes), most urgent first. A finished check is settled back in this thread by
``inbound.advance``: the seal index, delivery to the local side, ``done`` to the hub, the 01
queued (and the sender rung). One sender's statuses are fetched, and one document's packages
checked, in the order listed. A package in flight is
not taken again when the hub lists it again meanwhile.

The inbox is polled at ``timing.poll_interval`` when idle and at ``timing.busy_poll`` while
packages keep coming or are in flight; replicas on one PostgreSQL store poll one hub account
from one replica at a time (the inbox duty). It schedules; it must not check, deliver or
answer anything itself (``inbound`` does).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from functools import partial

from connector.daemon import inbound, organisations
from connector.daemon.inbound import Received, Taken
from connector.daemon.inflight import InflightWindow
from connector.daemon.ports import Services
from connector.daemon.retry import DependencyBackoff
from connector.errors import ConnectorError, PermanentError, UnavailableError
from connector.interconnect.base import MESSAGE_TYPES, PendingItem
from connector.logsetup import log_context
from connector.store.states import InboundState

log = logging.getLogger("connector.inbound")

DRAIN_SECONDS = 20.0  # at stop: checks in flight are finished and settled within this
Checked = Received | PermanentError | None
_TO_CHECK = (InboundState.RECEIVED, InboundState.VERIFIED)


def check(services: Services, package_id: int, raw: bytes) -> Checked:
    """Every check on receipt (any thread): the verdict ``inbound.advance`` settles."""
    with log_context(package_id=package_id, stage="verify"):
        try:
            return inbound.authenticate(services, raw)
        except PermanentError as exc:
            return exc


class Inbox:
    """One hub account's inbox: what is listed, what is in flight, what failed lately."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.window = InflightWindow(services.timing.inflight, "receive")
        self.attempts = inbound.InboxAttempts()
        self.flying: set[str] = set()  # hub ids in the window
        self.unavailable: UnavailableError | None = None  # seen while settling

    def poll(self) -> int:
        """List the inbox and put what is due in the window; how many were taken."""
        services, handled = self.services, 0
        for message_type in MESSAGE_TYPES:
            for item in services.hub.pending(message_type):
                if item.doc_id in self.flying or not self.attempts.due(item.doc_id, time.time()):
                    continue
                if not self.window.room():
                    return handled + 1  # more is waiting: look again soon
                handled += 1
                if services.store.find_inbound_by_hub_id(item.doc_id) is None:
                    # New: fetched in the window (the hub's latency overlaps), then stored.
                    # Statuses of one sender are fetched in the order listed, so that their
                    # checks, and they, are applied in that order.
                    self.flying.add(item.doc_id)
                    self.window.submit(
                        0,  # its urgency is inside the package: known once fetched
                        partial(services.hub.fetch, item.doc_id),
                        partial(self.fetched, item),
                        key=f"status:{item.sender}" if item.message_type == "status" else None,
                    )
                    continue
                self.take(item, None)
        return handled

    def fetched(self, item: PendingItem, outcome: Future[bytes]) -> None:
        self.flying.discard(item.doc_id)
        try:
            raw = outcome.result()
        except UnavailableError as exc:
            self.unavailable = exc
            return
        except Exception as exc:
            inbound._failed_round(self.services, item, exc, self.attempts)
            return
        try:
            self.take(item, raw)
        except UnavailableError as exc:
            self.unavailable = exc

    def take(self, item: PendingItem, raw: bytes | None) -> None:
        """Store a listed package (or find it stored) and carry it on: its checks in the
        window, or, past them, at once as ``resume`` does."""
        services = self.services
        try:
            taken = inbound.take(services, item, raw)
            if taken is not None and taken[1].inbound_state in _TO_CHECK:
                self.submit(item, taken)
                return
            if taken is not None:
                inbound.advance(*taken)
            self.attempts.succeeded(item.doc_id)
        except UnavailableError:
            raise
        except Exception as exc:
            inbound._failed_round(services, item, exc, self.attempts)

    def submit(self, item: PendingItem, taken: Taken) -> None:
        services, package, raw = taken
        acting = organisations.acting_for(services, package.id)  # several organisations
        if raw is None:
            raw = acting.store.raw(package.id)
            if raw is None:
                return
        self.flying.add(item.doc_id)
        self.window.submit(
            package.priority,
            partial(check, acting, package.id, raw),
            partial(self.settle, item, (services, package, raw)),
            key=package.document_id or None,  # one document's statuses applied in order
        )

    def settle(self, item: PendingItem, taken: Taken, outcome: Future[Checked]) -> None:
        services, package, raw = taken
        self.flying.discard(item.doc_id)
        with log_context(package_id=package.id, document_id=package.document_id,
                         stage="receive"):
            try:
                inbound.advance(services, package, raw, outcome.result())
                self.attempts.succeeded(item.doc_id)
            except UnavailableError as exc:
                self.unavailable = exc  # the loop backs off; the package comes again
            except Exception as exc:
                inbound._failed_round(services, item, exc, self.attempts)
        self.services.sender_bell.ring()  # an 01 or a 02 may be waiting to go


def inbound_loop(services: Services, stop: threading.Event) -> None:
    """Worker: poll the hub inbox until stopped."""
    backoff = DependencyBackoff(services.retry)
    inbox = Inbox(services)
    window = inbox.window
    duty, on_duty = f"inbox:{services.agency.organ_id}", False
    next_poll = 0.0
    try:
        while not stop.is_set():
            window.settle(0)
            # Replicas on one PostgreSQL store: one polls this hub account (and carries on the
            # packages received); the others ask again shortly and take over when it dies.
            if not services.store.try_hold_duty(duty):
                on_duty = False
                window.settle(min(services.timing.poll_interval, inbound.DUTY_ASK_INTERVAL))
                continue
            if not on_duty:  # at start, or on taking over: everything left mid-way
                on_duty = True
                log.info("polling the hub inbox (duty %s)", duty)
                try:
                    inbound.resume(services)
                except UnavailableError as exc:
                    log.warning("inbound packages not resumed yet (%s): %s", exc.kind,
                                exc.message)
            if time.monotonic() >= next_poll and window.room():
                next_poll = time.monotonic() + _round(services, inbox, backoff)
            # Until the next round is due and the window has room (a finished check wakes).
            due = next_poll - time.monotonic()
            window.settle(min(max(due, 0.0), 0.5) if window.room() else 0.5)
    finally:
        window.drain(DRAIN_SECONDS)
        window.close()


def _round(services: Services, inbox: Inbox, backoff: DependencyBackoff) -> float:
    """One inbox round; the seconds until the next."""
    try:
        if inbox.unavailable is not None:
            error, inbox.unavailable = inbox.unavailable, None
            raise error
        inbound.resume(services, inbound._AFTER_HANDOVER)
        handled = inbox.poll()
        backoff.succeeded()
        services.metrics.set_component_up("hub", True)
    except ConnectorError as exc:
        wait = min(backoff.failed(), 60.0)
        component = inbound._component_of(exc)
        services.metrics.set_component_up(component, False)
        log.warning(
            "%s not reachable (%s), next inbox round in %.1fs: %s",
            component,
            exc.kind,
            wait,
            exc.message,
        )
        return wait
    # While packages come or are checked, look again soon: more may be behind a page.
    busy = handled or inbox.window.in_flight
    return services.timing.busy_poll if busy else services.timing.poll_interval
