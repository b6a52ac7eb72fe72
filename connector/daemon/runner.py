"""Running a built connector: its worker threads under the supervisor.

Three workers: ``intake`` (local records and commands → signed packages), ``sender``
(packages → hub, urgent first) and ``inbound`` (hub inbox → local side, statuses both
ways). The supervisor gives them a bounded graceful shutdown and takes the process down if
one dies. This module starts and stops; the work itself is in the pipeline modules.
"""

from __future__ import annotations

import logging
import threading

from connector.daemon import events, inbound, intake, organisations, outbound, resume, sender
from connector.daemon.lifecycle import Supervisor
from connector.daemon.wiring import Runtime

log = logging.getLogger("connector.run")


def supervise(runtime: Runtime) -> Supervisor:
    services = runtime.services
    supervisor = Supervisor(shutdown_timeout=runtime.config.shutdown_timeout)

    freed = services.store.release_stale_leases(services.worker_id)
    if freed:
        log.info("%d package(s) claimed by an earlier, stopped process are free again", freed)

    def intake_worker(stop: threading.Event) -> None:
        # Replicas on one PostgreSQL store: the first to start resumes (SQLite: always).
        if services.store.try_hold_duty("resume"):
            resumed = outbound.resume_accepted(services)
            if resumed:
                log.info("resumed %d package(s) left half-prepared", resumed)
        intake.intake_loop(services, stop)

    supervisor.add("intake", intake_worker)
    supervisor.add("sender", lambda stop: sender.sender_loop(services, stop))
    # Documents a dead replica left half-prepared: one replica at a time takes them on.
    supervisor.add("resume", lambda stop: resume.resume_loop(services, stop))
    if services.organisations is None:
        supervisor.add("inbound", lambda stop: inbound.inbound_loop(services, stop))
    else:  # several organisations: one inbox per hub account (shared, or their own)
        for index, (inbox, organ_ids) in enumerate(organisations.inboxes(services)):
            log.info("inbox %d serves %s", index, ", ".join(organ_ids))
            supervisor.add(
                "inbound" if index == 0 else f"inbound-{index}",
                lambda stop, inbox=inbox: inbound.inbound_loop(inbox, stop),  # type: ignore[misc]
            )
    supervisor.on_stop.append(lambda: events.flush(services))  # what the broker missed
    supervisor.on_stop.append(runtime.close)
    return supervisor


def run(runtime: Runtime, *, install_signals: bool = True) -> int:
    agency = runtime.services.agency
    where = runtime.metrics_server.url if runtime.metrics_server else "metrics off"
    log.info("connector for %s (%s) running; %s", agency.organ_id, agency.organ_name, where)
    supervisor = supervise(runtime)
    if runtime.metrics_server is not None:
        runtime.metrics_server.health.watch_workers(supervisor.workers_alive)  # /livez
    return supervisor.run(install_signals=install_signals)
