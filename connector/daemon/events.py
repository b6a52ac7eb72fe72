"""Delivery events for the local system, and timing of stages.

Every state change of a package is told to the local side as a ``LocalEvent`` with a routing
key an operator can bind by kind (``outbound.ready``, ``outbound.sent``, ``outbound.failed``,
``outbound.refused``, ``inbound.delivered``, ``inbound.rejected``, ``status.01`` ...). Event
bodies carry identifiers, states and reasons, never document content. An event that cannot be
published (broker down) is held back in memory and published, in order, as soon as the local
side answers again; never fatal: the store holds the truth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from connector.daemon.ports import Services
from connector.errors import ConnectorError
from connector.local.base import LocalEvent
from connector.store.api import TrackedPackage
from connector.timeutil import now_vn

log = logging.getLogger("connector.events")
_flush_lock = threading.Lock()


def emit(
    services: Services, routing_key: str, package: TrackedPackage | None = None, **fields: object
) -> None:
    body: dict[str, object] = {"event": routing_key, "time": now_vn().isoformat()}
    if package is not None:
        body.update(
            package_id=package.id,
            direction=package.direction.value,
            kind=package.kind.value,
            state=package.state.value,
            local_id=package.key if package.direction.value == "out" else None,
            document_id=package.document_id,
            hub_id=package.hub_id,
        )
    body.update({k: v for k, v in fields.items() if v is not None})
    event_id = f"{routing_key}:{package.id if package else ''}:{time.time_ns()}"
    event = LocalEvent(routing_key=routing_key, body=body, event_id=event_id)
    flush(services)
    _publish_or_keep(services, event)


def _publish_or_keep(services: Services, event: LocalEvent) -> bool:
    try:
        services.sink.emit(event)
        return True
    except Exception as exc:  # an event held back must not stop the document
        backlog = services.event_backlog
        if len(backlog) == backlog.maxlen:
            log.error("event backlog full: dropping the oldest held-back event")
        backlog.append(event)
        log.warning(
            "could not emit event %s now (%s); held back for a later try", event.routing_key, exc
        )
        return False


def flush(services: Services) -> None:
    """Publish events held back while the local side was unreachable, oldest first."""
    backlog = services.event_backlog
    if not backlog or not _flush_lock.acquire(blocking=False):
        return
    try:
        while backlog:
            event = backlog.popleft()
            try:
                services.sink.emit(event)
            except Exception:
                backlog.appendleft(event)
                return
    finally:
        _flush_lock.release()


def error_fields(error: ConnectorError) -> dict[str, object]:
    return {"reason": error.reason, "stage": error.stage, "message": error.message}


@contextmanager
def timed(services: Services, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        services.metrics.observe_stage(stage, time.perf_counter() - started)
