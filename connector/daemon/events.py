"""Delivery events for the local system, and timing of stages.

Every state change of a package is told to the local side as a ``LocalEvent`` with a routing
key an operator can bind by kind (``outbound.ready``, ``outbound.sent``, ``outbound.failed``,
``outbound.refused``, ``inbound.delivered``, ``inbound.rejected``, ``status.01`` ...). Event
bodies carry identifiers, states and reasons, never document content. Failing to emit an
event is logged and counted, never fatal: the store holds the truth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from connector.daemon.ports import Services
from connector.errors import ConnectorError
from connector.local.base import LocalEvent
from connector.store.api import TrackedPackage
from connector.timeutil import now_vn

log = logging.getLogger("connector.events")


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
    try:
        services.sink.emit(LocalEvent(routing_key=routing_key, body=body, event_id=event_id))
    except Exception as exc:  # an event lost must not stop the document
        log.warning("could not emit event %s: %s", routing_key, exc)


def error_fields(error: ConnectorError) -> dict[str, object]:
    return {"reason": error.reason, "stage": error.stage, "message": error.message}


@contextmanager
def timed(services: Services, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        services.metrics.observe_stage(stage, time.perf_counter() - started)
