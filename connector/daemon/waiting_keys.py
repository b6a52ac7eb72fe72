"""Documents waiting for their organisation's keys (a connector serving several).

When an organisation's keys are unavailable (its token pulled out, its key file unreadable),
``outbound.handle`` stores its records ACCEPTED, acknowledges them and notes the organisation
as waiting; the other organisations' records go on. :func:`resume_waiting`, called by the
intake loop every ``polling.hub_interval`` while some organisation waits, prepares them once
the keys are back: each exactly once (the store's transitions guard it), in the order stored.
The automatic 01/02 of such an organisation wait the same way (``statuses`` stores them
ACCEPTED, built but unsigned; ``outbound.prepare`` signs them here), so its inbound packages
are still delivered and acknowledged and the inbox never waits for a token.
This module resumes; it must not take records from the local side.
"""

from __future__ import annotations

import logging

from connector.daemon import organisations
from connector.daemon.events import emit, error_fields
from connector.daemon.outbound import prepare
from connector.daemon.ports import Services
from connector.errors import PermanentError
from connector.store.api import ErrorInfo
from connector.store.states import IllegalTransition, OutboundState, PackageKind

log = logging.getLogger("connector.outbound")


def resume_waiting(services: Services) -> int:
    """Prepare the documents of organisations whose keys were unavailable; those still
    waiting stay ACCEPTED. Returns how many went READY."""
    registry = services.organisations
    if registry is None or not registry.waiting:
        return 0
    ready, still = 0, set()
    for package in services.store.find(states=(OutboundState.ACCEPTED,), limit=1000):
        record = services.store.record(package.id)
        if record is None:
            continue
        named, _ = organisations.record_hint(record)
        if (named or package.sender) in still:
            continue  # its organisation's keys were just found missing: not tried again
        try:
            raw, facts, _ = prepare(services, record)
        except organisations.OrganisationWaiting as exc:
            still.add(exc.organ_id)
            continue
        except PermanentError as exc:  # acknowledged already: refused in the store, told
            refused = services.store.mark_refused(package.id, ErrorInfo.of(exc))
            counted = organisations.for_record(services, record)
            counted.metrics.refused_record(exc.reason)
            counted.metrics.document("outbound", "refused")
            emit(services, "outbound.refused", refused, **error_fields(exc))
            continue
        try:
            prepared = services.store.mark_ready(package.id, raw, facts)
        except IllegalTransition:  # another replica prepared it meanwhile
            continue
        ready += 1
        if package.kind is PackageKind.EDOC:
            organisations.sending(services, facts.sender).metrics.document("outbound", "accepted")
        emit(services, "outbound.ready", prepared, recipients=list(facts.recipients),
             priority=facts.priority)
    if ready:
        services.sender_bell.ring()  # they go out now, not at the sender's next look
    for organ_id in list(registry.waiting):
        if organ_id not in still:
            log.info("organisation %s: keys back, its waiting documents prepared", organ_id)
            registry.set_waiting(organ_id, None)
    return ready
