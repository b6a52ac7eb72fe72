"""Every delivery event carries ``correlation_id`` and ``x-record-id``: the record id the
agency published (outbound), or the delivery id of what it received (inbound)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from connector.local.amqp import AmqpLocalSide, event_record_id
from connector.local.amqp_settings import AmqpSettings, AmqpTopology
from connector.local.base import LocalEvent
from tests.local.test_amqp_helpers import (
    get_all,
    make_settings,
    side_factory_for,
    unique_topology,
)


@pytest.fixture
def topology() -> Iterator[AmqpTopology]:
    yield from unique_topology()


@pytest.fixture
def side_factory(topology: AmqpTopology) -> Iterator[Callable[..., AmqpLocalSide]]:
    settings: AmqpSettings = make_settings(topology)
    yield from side_factory_for(settings)


OUTBOUND = {"event": "outbound.sent", "package_id": 7, "direction": "out", "local_id": "rec-7",
            "document_id": "000.00.31.H12,2025/07/01,7/SNV", "hub_id": "hub-7"}
INBOUND = {"event": "inbound.delivered", "package_id": 9, "direction": "in", "local_id": None,
           "document_id": "000.00.32.H12,2025/07/01,9/STC", "hub_id": "hub-9"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [(OUTBOUND, "rec-7"), (INBOUND, "in-9"), ({"event": "x"}, "ev-1")],
)
def test_what_an_event_is_about(body: dict[str, object], expected: str) -> None:
    assert event_record_id(LocalEvent("x", body, event_id="ev-1")) == expected


def test_published_events_carry_correlation_id_and_record_id(
    topology: AmqpTopology, side_factory: Callable[..., AmqpLocalSide]
) -> None:
    side = side_factory()
    side.emit(LocalEvent("outbound.sent", OUTBOUND, event_id="e-1"))
    side.emit(LocalEvent("inbound.delivered", INBOUND, event_id="e-2"))
    messages = get_all(topology.events_queue)
    assert [m.properties["correlation_id"] for m in messages] == ["rec-7", "in-9"]
    assert [m.headers["x-record-id"] for m in messages] == ["rec-7", "in-9"]
    assert [m.properties["message_id"] for m in messages] == ["e-1", "e-2"]
