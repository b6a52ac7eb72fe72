"""A provincial hub speaking the Bkav eDoc REST v2 protocol: chosen by ``hub.type``."""

from __future__ import annotations

from connector.daemon import inbound, outbound, sender
from connector.daemon.retry import DependencyBackoff
from connector.interconnect.edoc_rest import EdocRestClient
from connector.store.states import Direction, InboundState, OutboundState
from tests.e2e.harness import World
from tests.e2e.inprocess import daemon_pki, running, world  # noqa: F401

REST = {"hub": {"type": "edoc-rest"}}


def test_documents_and_notices_travel_over_edoc_rest(world: World) -> None:  # noqa: F811
    with running(world, world.a, changes=REST) as a, running(world, world.b, changes=REST) as b:
        assert isinstance(a.services.hub, EdocRestClient)
        record = world.json_record("01-ordinary.json")
        world.a.drop_record(record)
        (item,) = a.services.intake.fetch(1, 5.0)
        outbound.handle(a.services, item)
        sender.send_round(a.services, DependencyBackoff(a.services.retry))
        (sent,) = [
            p
            for p in a.services.store.find(direction=Direction.OUTBOUND)
            if p.key == record.record_id
        ]
        assert sent.state is OutboundState.SENT

        inbound.poll_once(b.services)
        (received,) = b.services.store.find(direction=Direction.INBOUND)
        assert received.inbound_state is InboundState.NOTIFIED
        assert len(world.b.deliveries()) == 1

        sender.send_round(b.services, DependencyBackoff(b.services.retry))  # B's 01
        inbound.poll_once(a.services)
        (recipient,) = a.services.store.recipients(sent.id)
        assert recipient.status_code == "01"
