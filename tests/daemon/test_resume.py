"""The resume duty: a document left ACCEPTED with nobody working on it is prepared by the
replica on duty once it is older than a lease; a fresh one (a live replica preparing it) is
left alone; one that another replica made READY meanwhile is not built twice."""

from __future__ import annotations

import threading

from connector.daemon import outbound, resume
from connector.store.states import Direction, OutboundState
from tests.e2e.harness import World
from tests.e2e.inprocess import daemon_pki, runtime, world  # noqa: F401


def test_a_stale_accepted_document_is_prepared_by_the_replica_on_duty(
    world: World,  # noqa: F811
) -> None:
    a = runtime(world, world.a)
    try:
        services = a.services
        world.a.drop_record(world.json_record("01-ordinary.json"))
        (item,) = services.intake.fetch(1, 5.0)
        package_id = outbound.admit(services, item)  # stored ACCEPTED; then its replica died
        assert package_id is not None
        item.ack()  # its record settled: nobody will bring it again

        assert resume.resume_stale(services, older_than=3600) == 0  # maybe being prepared
        assert services.store.get(package_id).state is OutboundState.ACCEPTED

        assert resume.resume_stale(services, older_than=0) == 1
        ready = services.store.get(package_id)
        assert ready.state is OutboundState.READY and services.store.raw(package_id)
        assert resume.resume_stale(services, older_than=0) == 0  # nothing left, nothing rebuilt
        (only,) = services.store.find(direction=Direction.OUTBOUND)
        assert only.content_hash == ready.content_hash

        stop = threading.Event()
        stop.set()
        resume.resume_loop(services, stop)  # returns at once when stopped
    finally:
        a.close()
