"""The intake worker: local records in, several prepared at once, each settled in this thread.

Each record is admitted here (stored ACCEPTED, or settled at once when it is known, refused
unread or a redelivery), then prepared in the in-flight window (``inflight``: mapping, seal,
encryption, build, validation and signature run in its threads, the CPU-heavy stages in the
worker pool's processes), most urgent first. A finished preparation is settled back here:
READY in the store, the sender rung, and only then the local record acknowledged; a refusal
is dead-lettered; a failure that is not the record's fault releases it (and holds new intake
for a moment). The local side's items are settled in this thread only.

It drives ``outbound``'s stages; it must not prepare, send or settle anything itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from functools import partial

from connector.daemon import organisations, outbound
from connector.daemon.inflight import InflightWindow
from connector.daemon.outbound import Prepared
from connector.daemon.ports import Services
from connector.errors import ConfigurationError, ConnectorError, PermanentError, UnavailableError
from connector.local.base import IntakeItem, LocalRecord, RecordKind
from connector.logsetup import log_context

log = logging.getLogger("connector.outbound")

DRAIN_SECONDS = 20.0  # at stop: preparations in flight are finished and settled within this


class _Intake:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.window = InflightWindow(services.timing.inflight, "prepare")
        self.attempts: dict[str, int] = {}  # in-process failures per record: a poison stops
        self.held_until = 0.0  # no new records before (a dependency down, a failed record)

    def hold(self, seconds: float) -> None:
        self.held_until = max(self.held_until, time.monotonic() + seconds)

    def take(self, item: IntakeItem) -> None:
        services = self.services
        with log_context(record_id=item.record.record_id, stage="prepare"):
            try:
                package_id = outbound.admit(services, item)
            except Exception as exc:
                self.failed(item, exc)
                return
        if package_id is None:
            self.attempts.pop(item.record.record_id, None)
            return
        # Workflow commands become statuses whose order matters (03 before 05): one at a time.
        command = item.record.kind is RecordKind.COMMAND
        self.window.submit(
            item.record.priority,
            partial(_prepare, services, item.record),
            partial(self.prepared, item, package_id),
            key="commands" if command else None,
        )

    def prepared(self, item: IntakeItem, package_id: int, future: Future[Prepared]) -> None:
        services = self.services
        with log_context(record_id=item.record.record_id, stage="prepare"):
            try:
                try:
                    result = future.result()
                except PermanentError as exc:
                    outbound.refuse(services, item, package_id, exc)
                    return
                except organisations.OrganisationWaiting as exc:
                    outbound.waits_for_keys(services, item, package_id, exc)
                    return
                outbound.finish(services, item, package_id, result)
                self.attempts.pop(item.record.record_id, None)
            except Exception as exc:
                self.failed(item, exc)

    def failed(self, item: IntakeItem, exc: Exception) -> None:
        services = self.services
        if isinstance(exc, UnavailableError | ConfigurationError):
            log.warning("dependency down while preparing: %s", exc.message)
            with contextlib.suppress(Exception):
                item.release()
            self.hold(services.timing.poll_interval)
            return
        if not isinstance(exc, ConnectorError):
            log.error("unexpected error preparing record %s", item.record.record_id,
                      exc_info=exc)
        try:
            outbound.failed_attempt(services, item, exc, self.attempts)
        except Exception as settle_error:  # the record stays; it comes again
            log.warning("record %s could not be settled: %s", item.record.record_id, settle_error)
            with contextlib.suppress(Exception):
                item.release()
        self.hold(min(services.timing.poll_interval, 1.0))


def _prepare(services: Services, record: LocalRecord) -> Prepared:
    with log_context(record_id=record.record_id, stage="prepare"):
        return outbound.prepare(services, record)


def intake_loop(services: Services, stop: threading.Event) -> None:
    """Worker: take records from the local side until stopped, several in flight."""
    intake = _Intake(services)
    window = intake.window
    next_resume = 0.0
    try:
        while not stop.is_set():
            if services.organisations is not None and time.monotonic() >= next_resume:
                next_resume = time.monotonic() + services.timing.poll_interval
                from connector.daemon.waiting_keys import resume_waiting

                try:
                    resume_waiting(services)
                except ConnectorError as exc:
                    log.warning("waiting documents not resumed yet: %s", exc.message)
            window.settle(0)
            held = intake.held_until - time.monotonic()
            room = window.room()
            if held > 0 or room == 0:
                window.settle(min(held, 0.5) if held > 0 else 0.5)
                continue
            # Busy: look for records without blocking, then wait for a finished preparation.
            busy = window.in_flight > 0
            wait = 0.0 if busy else services.timing.intake_timeout
            try:
                items = services.intake.fetch(min(services.timing.batch, room), wait)
            except UnavailableError as exc:
                log.warning("local side unavailable: %s", exc.message)
                intake.hold(services.timing.poll_interval)
                continue
            for item in sorted(items, key=lambda i: -i.record.priority):
                if stop.is_set():
                    item.release()
                    continue
                intake.take(item)
            if busy and not items:
                window.settle(0.05)
    finally:
        window.drain(DRAIN_SECONDS)
        window.close()
