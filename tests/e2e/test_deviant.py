"""A package with departures from QCVN 102 goes A → hub → B: received, delivered with its
warnings (delivery headers, event, store, metric), and the 01 goes back to A.

A maps and seals one of its example records with its real pipeline, the package gets the
hub-style deviations of the corpus (``tests.edxml.deviations.hub_deviant``), A signs it with
its own key and its sender sends it; B's inbound is driven one round at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.daemon import inbound, sender
from connector.daemon.retry import DependencyBackoff
from connector.daemon.wiring import Runtime
from connector.edxml import EdocPackage, build_package
from connector.store import cmd_messages
from connector.store.api import NewOutbound, PackageFacts
from connector.store.states import (
    Direction,
    InboundState,
    OutboundState,
    PackageKind,
    RecipientState,
)
from tests.e2e.harness import A_ID, B_ID, World
from tests.e2e.inprocess import daemon_pki, runtime, world  # noqa: F401
from tests.edxml.deviations import hub_deviant


@pytest.fixture
def a(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.a)
    yield built
    built.close()


@pytest.fixture
def b(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.b)
    yield built
    built.close()


def _deviant_from_a(world: World, a: Runtime) -> tuple[str, tuple[str, ...]]:  # noqa: F811
    """A's example record, sealed and encrypted for B, made deviant, signed by A, queued."""
    record = world.json_record("01-ordinary.json")
    world.a.drop_record(record)
    (item,) = a.services.intake.fetch(1, 5.0)
    package = a.services.mapper.record_to_package(item.record)
    assert isinstance(package, EdocPackage)
    package = dataclasses.replace(package, to=tuple(t for t in package.to if t.organ_id == B_ID))
    sealed = a.services.offload(a.services.pdf.seal_outbound, package.attachments)
    encrypted = a.services.crypto.encrypt_for(sealed, [B_ID])
    raw = build_package(dataclasses.replace(package, attachments=encrypted))
    deviant, elements = hub_deviant(raw)
    signed = a.services.signer.sign(deviant)
    a.services.store.add_outbound(
        NewOutbound(
            local_id="deviant-1",
            kind=PackageKind.EDOC,
            state=OutboundState.READY,
            raw=signed,
            facts=PackageFacts(document_id=package.document_id, sender=A_ID, recipients=(B_ID,),
                               code=str(package.code)),
        )
    )
    item.ack()
    sender.send_round(a.services, DependencyBackoff(a.services.retry))
    return package.document_id, elements


def test_deviant_package_is_delivered_with_its_warnings_and_answered_01(
    world: World,  # noqa: F811
    a: Runtime,
    b: Runtime,
) -> None:
    document_id, elements = _deviant_from_a(world, a)
    assert inbound.poll_once(b.services) == 1
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    assert package.inbound_state is InboundState.NOTIFIED, package.last_error

    # Kept with the package: one deviation event per warning, naming the element.
    details = [e.detail for e in b.services.store.events(package.id) if e.event == "deviation"]
    for element in elements:
        assert any(element in d for d in details), (element, details)

    # Shown by `connector messages show ID`.
    out = io.StringIO()
    cmd_messages._show(b.services.store, argparse.Namespace(id=package.id, raw=None, json=False),
                       None, out)
    shown = out.getvalue()
    assert f"Warnings on receipt ({len(details)})" in shown and "HubExtension" in shown

    # Counted by element (bounded labels: an unknown element counts as "other").
    counts = {
        s.labels["element"]: s.value
        for family in text_string_to_metric_families(b.metrics.render().decode())
        if family.name == "connector_received_deviations"
        for s in family.samples
    }
    assert counts["OrganId"] >= 1 and counts["OrganName"] >= 1 and counts["other"] >= 1

    # Carried in the local delivery (headers) and its event.
    (delivery,) = world.b.deliveries()
    assert delivery.document_id == document_id
    carried = json.loads(delivery.headers["deviations"])
    assert int(delivery.headers["deviation-count"]) == len(details)
    (event,) = world.b.events("inbound.delivered")
    assert event["deviation_count"] == len(details) and len(event["deviations"]) <= 20
    for element in elements:
        assert any(element in w for w in carried), element
        assert any(element in w for w in event["deviations"]), element

    # B's automatic 01 reaches A.
    sender.send_round(b.services, DependencyBackoff(b.services.retry))
    assert inbound.poll_once(a.services) == 1
    (sent,) = [p for p in a.services.store.find(direction=Direction.OUTBOUND)
               if p.kind is PackageKind.EDOC]
    states = {r.organ_id: r.state for r in a.services.store.recipients(sent.id)}
    assert states[B_ID] is RecipientState.ARRIVED
