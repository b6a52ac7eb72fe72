"""The resume duty: documents left ACCEPTED (half-prepared) by a replica that died are
prepared by a survivor.

A record whose package is ACCEPTED while its local record is already settled (acknowledged
after a key outage, or taken by a process that died between the two) has nobody working on
it: no lease names it, and RabbitMQ will not deliver it again. One replica at a time (the
singleton duty ``resume`` of the tracking store; SQLite: the only daemon) looks every
``RESUME_INTERVAL`` seconds for ACCEPTED packages unchanged for ``STALE_AFTER`` seconds (or a
lease, if longer), prepares them from their stored record and makes them READY. ACCEPTED
packages carry no lease, so age is the only sign that nobody works on one: a live replica's
intake may hold admitted records for a while behind a backlog (a 3 s age took one from it
in the 1,000-record broker run), hence minutes, not seconds. Records in flight when their
replica died need no resume: RabbitMQ redelivers them to another replica at once. If two
prepare one package anyway, the store keeps the first (``mark_ready`` refuses a second).

It prepares and stores; it must not acknowledge or settle anything on the local side.
"""

from __future__ import annotations

import logging
import threading
import time

from connector.daemon import organisations
from connector.daemon.lifecycle import sleep_until
from connector.daemon.outbound import prepare
from connector.daemon.ports import Services
from connector.errors import ConnectorError, PermanentError
from connector.store.api import ErrorInfo, PackageFilter
from connector.store.states import Direction, IllegalTransition, OutboundState

log = logging.getLogger("connector.resume")

RESUME_INTERVAL = 5.0  # seconds between two looks of the replica on the resume duty
BATCH = 100  # packages prepared per look at most
STALE_AFTER = 600.0  # seconds unchanged before an ACCEPTED package is taken as abandoned


def resume_stale(services: Services, *, older_than: float) -> int:
    """Prepare the ACCEPTED packages unchanged for ``older_than`` seconds; how many went
    READY. Those of an organisation waiting for its keys stay (``waiting_keys`` has them)."""
    now = services.clock() if services.clock else time.time()
    stale = services.store.find_matching(
        PackageFilter(
            direction=Direction.OUTBOUND,
            states=(OutboundState.ACCEPTED,),
            unchanged_since=now - older_than,
        ),
        limit=BATCH,
    )
    resumed = 0
    for package in stale:
        record = services.store.record(package.id)
        if record is None:
            continue
        try:
            raw, facts, _ = prepare(services, record)
        except organisations.OrganisationWaiting:
            continue
        except PermanentError as exc:
            services.store.mark_refused(package.id, ErrorInfo.of(exc))
            continue
        except Exception as exc:  # stays ACCEPTED: tried again at the next look
            log.warning("package #%d not resumed yet: %s", package.id, exc)
            continue
        try:
            services.store.mark_ready(package.id, raw, facts)
        except IllegalTransition:  # prepared meanwhile by the replica that had it
            continue
        services.sender_bell.ring()
        resumed += 1
    return resumed


def resume_loop(services: Services, stop: threading.Event) -> None:
    """Worker: on the resume duty, look for stale ACCEPTED packages until stopped."""
    while not stop.is_set():
        if services.store.try_hold_duty("resume"):
            try:
                older_than = max(services.timing.lease_seconds, STALE_AFTER)
                resumed = resume_stale(services, older_than=older_than)
            except ConnectorError as exc:  # the store is down: the next look tries again
                log.warning("half-prepared documents not resumed yet: %s", exc.message)
            except Exception:  # a bug must not take the daemon down
                log.exception("half-prepared documents not resumed")
            else:
                if resumed:
                    log.info("resumed %d document(s) left half-prepared", resumed)
        sleep_until(stop, RESUME_INTERVAL)
