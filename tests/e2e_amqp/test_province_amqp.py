"""Several organisations over RabbitMQ (the real broker, this run's own topology): records
published with the header ``x-organ-id`` go out as that organisation, one naming an
organisation not served is dead-lettered with the reason, and a document from B to two of
ours reaches the received exchange once per organisation, each with the header ``organ-id``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.daemon import inbound, organisations, outbound, sender, wiring
from connector.daemon.retry import DependencyBackoff
from connector.store.states import Direction, OutboundState
from connector.trust.pki import DemoPki
from tests.daemon.province import (
    C_ID,
    D_ID,
    OURS,
    local_record,
    org_record,
    province_config,
    province_pki,
    start_hub,
)
from tests.e2e.harness import A_ID, B_ID, World
from tests.e2e.inprocess import ListItem, runtime
from tests.e2e_amqp.harness import (
    BROKER_URL,
    Collector,
    _broker_env,
    broker_problem,
    connect,
    declare,
    delete,
    topology_for,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    problem = broker_problem()
    if problem is not None:
        pytest.skip(problem)
    return province_pki(Path(tmp_path_factory.mktemp("province-amqp")) / "pki")


@pytest.fixture
def world(tmp_path: Path, pki: DemoPki,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, str]]:
    created = World(tmp_path, pki, monkeypatch.setenv)
    start_hub(created, monkeypatch.setenv)
    for name, value in _broker_env().items():  # secrets are read from the environment
        monkeypatch.setenv(name, value)
        created.env[name] = value
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-p."
    declare(topology_for(prefix))
    try:
        yield created, prefix
    finally:
        created.close()
        delete(topology_for(prefix))


def _publish(queue: str, record: dict[str, Any], organ_id: str) -> None:
    with connect(BROKER_URL, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(
            json.dumps(record, ensure_ascii=False).encode("utf-8"), routing_key=queue,
            content_type="application/json",
            headers={"x-record-id": record["id"], organisations.RECORD_HEADER: organ_id},
            delivery_mode=2, mandatory=True)


def _wait(what: str, condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_organisations_named_by_amqp_headers(world: tuple[World, str], pki: DemoPki,
                                             tmp_path: Path) -> None:
    w, prefix = world
    topology = topology_for(prefix)
    amqp: dict[str, Any] = {"url": w.env["CONNECTOR_AMQP_URL"], "topology": {"prefix": prefix}}
    if "CONNECTOR_AMQP_PASSWORD" in w.env:
        amqp["password_env"] = "CONNECTOR_AMQP_PASSWORD"
    config = load_config(province_config(w, tmp_path / "p.yaml", None,
                                         {"local": {"type": "amqp", "amqp": amqp}}),
                         environ=w.env)
    ours, b = wiring.build(config, start_metrics=False), runtime(w, w.b)
    received = Collector(topology.inbound_queue or "").start()
    dead = Collector(topology.dead_letter_queue).start()
    try:
        services = ours.services
        for number, organ_id in enumerate(OURS):
            _publish(topology.outbound_queue,
                     org_record(pki, organ_id, f"amqp-{number}", [B_ID], 700 + number), organ_id)
        _publish(topology.outbound_queue, org_record(pki, A_ID, "amqp-x", [B_ID], 799),
                 "000.00.97.H12")
        handled: list[str] = []

        def take() -> bool:
            for item in services.intake.fetch(10, 0.5):
                outbound.handle(services, item)
                handled.append(item.record.record_id)
            return len(handled) == 4

        _wait("the four records taken", take)
        ready = services.store.find(direction=Direction.OUTBOUND, states=(OutboundState.READY,))
        assert sorted(p.sender for p in ready) == sorted(OURS)
        _wait("the unknown organisation's record dead-lettered", lambda: dead.count() == 1)
        reason = dead.snapshot()[0].headers.get("x-connector-reason")
        assert reason == "unknown_organisation"

        sender.send_round(services, DependencyBackoff(services.retry))
        inbound.poll_once(b.services)
        assert sorted(d.headers["from"] for d in w.b.deliveries("document")) == sorted(OURS)

        outbound.handle(b.services, ListItem(local_record(
            org_record(pki, B_ID, "amqp-b", [C_ID, D_ID], 798))))
        sender.send_round(b.services, DependencyBackoff(b.services.retry))
        for inbox, _ in organisations.inboxes(services):
            inbound.poll_once(inbox)

        def documents() -> list[Any]:
            return [m for m in received.snapshot()
                    if m.headers.get("x-delivery-kind") == "document"]

        _wait("B's document delivered to C and to D", lambda: len(documents()) == 2)
        assert sorted(m.headers[organisations.DELIVERY_HEADER] for m in documents()) == sorted(
            [C_ID, D_ID])
    finally:
        received.stop()
        dead.stop()
        b.close()
        ours.close()
