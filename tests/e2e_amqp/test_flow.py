"""A thousand records through RabbitMQ: agency A's software → A → hub → B → B's software.

One run (module fixture) serves every test here, because it is the expensive part: the hub
emulator in this process, agencies A and B as ``connector run`` on the shipped
``config/connector-amqp*.yaml``, and a plain kombu producer (the docs/amqp.md example)
publishing to A's outbound queue, while the connectors run:

1. a backlog of ordinary records (half the run),
2. once A is sending the backlog, the urgent ones (5 % of the run, ``priority`` 2 =
   Thượng khẩn),
3. then the rest of the ordinary records.

The run is over when B's local consumer has every document and A's events exchange every
``status.01``. Then each test checks one promise: exactly once and verified at B; what A's
events exchange shows; urgent records overtaking the backlog; ``/metrics`` of both daemons
(``promtool check metrics``, counters equal to what was sent).

``CONNECTOR_E2E_AMQP_RECORDS`` changes the number of records (1000 is the documented run,
and the default; about two minutes on two cores).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.trust.pdf_policy import is_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pki import DemoPki
from connector.trust.truststore import SignerKind, TrustStore
from tests.e2e.harness import A_ID
from tests.e2e_amqp.harness import (
    AmqpWorld,
    Collector,
    Record,
    RecordFactory,
    assert_received_exactly,
    connect,
    documents_at_b,
    duplicates,
    queue_depth,
    signed_main_pdf,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(1200)]

RECORDS = int(os.environ.get("CONNECTOR_E2E_AMQP_RECORDS", "1000"))
URGENT = max(1, RECORDS // 20)  # 5 %
BACKLOG = RECORDS // 2  # ordinary records published before the urgent ones
URGENT_PRIORITY = 2  # Thượng khẩn


@dataclass
class Run:
    world: AmqpWorld
    backlog: list[Record]
    urgent: list[Record]
    later: list[Record]
    b_inbound: Collector  # B's local system: received documents
    a_events: Collector  # A's local system / monitoring: delivery events
    a_inbound: Collector  # A's local system: status notices received
    a_bound: Collector  # a queue bound to A's events exchange for outbound.sent and status.01
    sent_before_urgent: int  # A's documents the hub held when the urgent ones were published
    seconds: float

    @property
    def records(self) -> list[Record]:
        return [*self.backlog, *self.urgent, *self.later]


def _wait_consuming(world: AmqpWorld, queue: str) -> None:
    def consumers() -> int:
        with connect() as conn:
            _, _, count = conn.channel().queue_declare(queue, passive=True)
            return int(count)

    world.wait(f"a consumer on {queue}", lambda: consumers() > 0, timeout=60)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, amqp_pki: DemoPki) -> Iterator[Run]:
    with pytest.MonkeyPatch.context() as patch:
        world = AmqpWorld(tmp_path_factory.mktemp("e2e-amqp-flow"), amqp_pki, patch.setenv)
        try:
            yield _run(world)
        finally:
            world.close()


def _run(world: AmqpWorld) -> Run:
    world.start_hub()
    factory = RecordFactory(world.run, signed_main_pdf(world.signer))
    backlog = [factory.make(i) for i in range(BACKLOG)]
    urgent = [factory.make(BACKLOG + i, URGENT_PRIORITY) for i in range(URGENT)]
    later = [factory.make(BACKLOG + URGENT + i) for i in range(RECORDS - BACKLOG - URGENT)]
    b_inbound = world.collect(world.topology["B"].inbound_queue)
    a_events = world.collect(world.topology["A"].events_queue)
    a_inbound = world.collect(world.topology["A"].inbound_queue)
    a_bound = world.bind(world.topology["A"].events_exchange, ["outbound.sent", "status.01"])
    world.start()
    _wait_consuming(world, world.topology["A"].outbound_queue)
    started = time.monotonic()
    with world.producer() as producer:
        producer.publish_all(backlog)
        # The urgent ones come while A is busy with the backlog (some of it already taken).
        world.wait(
            "A's first documents at the hub",
            lambda: len(world.world.hub_packages(sender=A_ID)) >= min(20, BACKLOG // 4),
            timeout=120,
        )
        sent_before_urgent = len(world.world.hub_packages(sender=A_ID))
        producer.publish_all(urgent)
        producer.publish_all(later)
    world.wait(
        f"{RECORDS} documents at B's local consumer",
        lambda: len(documents_at_b(b_inbound.snapshot())) >= RECORDS,
        timeout=900,
        interval=1.0,
    )
    world.wait(
        f"{RECORDS} status.01 events at A",
        lambda: a_events.count("status.01") >= RECORDS,
        timeout=300,
        interval=1.0,
    )
    seconds = time.monotonic() - started
    # Give a stray duplicate or late event the chance to show before the checks.
    time.sleep(2)
    print(
        f"\n{RECORDS} records A -> hub -> B -> 01 -> A in {seconds:.1f}s "
        f"({RECORDS / seconds:.1f} documents/s)"
    )
    return Run(
        world,
        backlog,
        urgent,
        later,
        b_inbound,
        a_events,
        a_inbound,
        a_bound,
        sent_before_urgent,
        seconds,
    )


def test_b_receives_every_document_exactly_once_verified(run: Run) -> None:
    received = run.b_inbound.snapshot()
    assert not duplicates(received), f"B's consumer got deliveries twice: {duplicates(received)}"
    assert_received_exactly(run.records, received)
    assert len(received) == RECORDS
    # B's connector verified each package before delivering it; check a sample again here,
    # independently: the personal signature and A's seal on the main PDF, as B's software got it.
    trust = TrustStore.from_dirs(run.world.world.pki.trust_dir, run.world.world.pki.crl_dir)
    by_document = {r.document_id: r for r in run.records}
    sample = [m for m in received if by_document[m.headers["document-id"]].urgency][:3]
    sample += received[:: max(1, len(received) // 5)]
    for message in sample:
        _, files = message.parts()
        pdfs = [data for data in files.values() if is_pdf(data)]
        assert pdfs, f"{message.headers['document-id']}: no PDF"
        report = verify_pdf(pdfs[0], trust)
        assert report.all_ok, [(s.signer, s.reason) for s in report.failures]
        assert report.valid_of(SignerKind.PERSONAL), "no valid personal signature"
        assert any(s.organ_id == A_ID for s in report.valid_of(SignerKind.ORGANISATION))


def test_a_events_show_every_sent_and_every_01(run: Run) -> None:
    events = run.a_events.snapshot()
    kinds = collections.Counter(e.routing_key for e in events)
    assert kinds["outbound.sent"] == RECORDS, kinds
    assert kinds["status.01"] == RECORDS, kinds
    assert kinds["outbound.ready"] == RECORDS, kinds
    assert not {k for k in kinds if k in ("outbound.failed", "outbound.refused")}, kinds
    sent = collections.Counter(
        e.json()["local_id"] for e in events if e.routing_key == "outbound.sent"
    )
    assert sent == collections.Counter(r.record_id for r in run.records)
    arrived = collections.Counter(
        e.json()["document_id"] for e in events if e.routing_key == "status.01"
    )
    assert arrived == collections.Counter(r.document_id for r in run.records)
    for event in events:
        assert event.properties.get("content_type") == "application/json"
        assert event.message_id, "events carry an id"
    # An operator's own queue bound by kind gets exactly those two kinds, each once per record.
    bound = collections.Counter(e.routing_key for e in run.a_bound.snapshot())
    assert bound == {"outbound.sent": RECORDS, "status.01": RECORDS}, bound
    # A's software also receives each 01 itself, on A's received exchange.
    run.world.wait(
        f"{RECORDS} status notices at A's local consumer",
        lambda: run.a_inbound.count("status.01") >= RECORDS,
        timeout=60,
    )
    notices = collections.Counter(m.headers.get("document-id") for m in run.a_inbound.snapshot())
    assert notices == collections.Counter(r.document_id for r in run.records)


def test_urgent_records_overtake_the_backlog(run: Run) -> None:
    at_hub = [p for p in run.world.world.hub_packages(sender=A_ID, kind="edoc")]
    order = {p.document_id: index for index, p in enumerate(at_hub)}
    assert len(order) == RECORDS
    last_urgent = max(order[r.document_id] for r in run.urgent)
    first_later = min(order[r.document_id] for r in run.later) if run.later else len(at_hub)
    backlog_after = sum(order[r.document_id] > last_urgent for r in run.backlog)
    print(
        f"\nurgent published when the hub held {run.sent_before_urgent} of A's documents; "
        f"the last urgent was #{last_urgent + 1} at the hub; {backlog_after} of the "
        f"{BACKLOG} backlog records reached the hub after it"
    )
    assert last_urgent < first_later, "an ordinary record published later overtook an urgent one"
    # The urgent ones went out while most of the backlog was still waiting.
    assert backlog_after >= BACKLOG - run.sent_before_urgent - BACKLOG // 4, (
        f"only {backlog_after} backlog records were sent after the last urgent one"
    )
    assert queue_depth(run.world.topology["A"].outbound_queue) == 0


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def _value(
    values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    key = (name, frozenset(labels.items()))
    assert key in values, f"{name}{labels} not exposed"
    return values[key]


def test_metrics_pass_promtool_and_match_what_was_sent(run: Run) -> None:
    promtool = shutil.which("promtool")
    texts = {agency: run.world.metrics(agency) for agency in ("A", "B")}
    if promtool is None:
        pytest.skip("promtool is not installed (apt install prometheus): cannot lint /metrics")
    for agency, text in texts.items():
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), (
            f"promtool check metrics on {agency}'s /metrics:\n{checked.stdout}{checked.stderr}"
        )
    a, b = _samples(texts["A"]), _samples(texts["B"])
    documents = "connector_documents_total"
    for outcome, expected in (
        ("accepted", RECORDS),
        ("sent", RECORDS),
        ("refused", 0),
        ("failed", 0),
    ):
        assert _value(a, documents, direction="outbound", outcome=outcome) == expected, outcome
    assert _value(a, "connector_send_attempts_total", kind="edoc", result="ok") == RECORDS
    assert _value(a, "connector_statuses_total", direction="received", code="01") == RECORDS
    assert (
        _value(a, "connector_packages", direction="outbound", kind="edoc", state="sent") == RECORDS
    )
    assert _value(a, "connector_outbox_packages") == 0
    assert _value(a, "connector_broker_quarantined_total") == 0
    refused = [v for (name, _), v in a.items() if name == "connector_refused_records_total"]
    assert sum(refused) == 0
    for outcome, expected in (
        ("received", RECORDS),
        ("delivered", RECORDS),
        ("rejected", 0),
        ("duplicate", 0),
    ):
        assert _value(b, documents, direction="inbound", outcome=outcome) == expected, outcome
    assert _value(b, "connector_statuses_total", direction="sent", code="01") == RECORDS
    assert _value(b, "connector_send_attempts_total", kind="status", result="ok") == RECORDS
    for values in (a, b):
        for component in ("broker", "hub", "store"):
            assert _value(values, "connector_component_up", component=component) == 1
    for agency in ("A", "B"):
        assert run.world.healthz(agency) == 200


def test_run_leaves_nothing_behind(run: Run) -> None:
    """Every queue the agencies feed is drained; nothing was dead-lettered or quarantined."""
    for agency in ("A", "B"):
        topology = run.world.topology[agency]
        for queue in (
            topology.outbound_queue,
            topology.commands_queue,
            topology.quarantine_queue,
            topology.dead_letter_queue,
        ):
            assert queue_depth(queue) == 0, f"{queue} is not empty"
