"""Poison records on A's outbound queue: dead-lettered once each, with the reason; the run goes on.

Agency software publishes, between good records, what a careless or broken producer would:
a truncated JSON body, a broken XML body, binary garbage without a content type, a record
naming a mapping that does not exist, a secret document, and a record whose claim-check file
is missing (next to a good record whose claim-check file is there). Each poison record must
land once in A's dead-letter queue, untouched, with the reason headers of docs/amqp.md; every
good record must reach B; A's events and metrics count the refusals.
"""

from __future__ import annotations

import collections
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import A_ID, EXAMPLES
from tests.e2e_amqp.harness import (
    FAST_AMQP,
    MAPPING,
    AmqpWorld,
    Record,
    RecordFactory,
    assert_received_exactly,
    documents_at_b,
    queue_depth,
    signed_main_pdf,
)

pytestmark = [pytest.mark.broker, pytest.mark.timeout(300)]

CLAIM_CHECK_FILE = "46-KH-SNV-lich.pdf"  # an example attachment (unsigned PDF: A seals it)


@dataclass(frozen=True)
class Poison:
    record_id: str
    body: bytes
    headers: dict[str, str]
    content_type: str
    reason: str  # the x-connector-reason it must be dead-lettered with
    mentions: str  # what the readable error must name


def _poison(factory: RecordFactory) -> list[Poison]:
    json_headers = {"x-mapping": MAPPING}
    secret = factory.make(900, do_mat="Mật")
    missing = factory.make(
        901,
        tep_dinh_kem=[
            {"ten_tep": "bang-bieu.pdf", "loai_tep": "application/pdf", "tep_spool": "absent.pdf"}
        ],
    )
    unknown = factory.make(902)
    return [
        Poison("POISON-json", b'{"id": "POISON-json", "trich_yeu": ', json_headers,
               "application/json", "record_malformed", "JSON"),
        Poison("POISON-xml", b"<VanBan><TrichYeu>khong dong the", {"x-mapping": "legacy-xml"},
               "application/xml", "record_malformed", "XML"),
        Poison("POISON-binary", b"\x00\x01\x02 garbage \xff", {}, "", "record_malformed",
               "JSON"),
        Poison(unknown.record_id, unknown.body, {"x-mapping": "qlvb-json-v9"},
               "application/json", "unknown_mapping", "qlvb-json-v9"),
        Poison(secret.record_id, secret.body, json_headers, "application/json",
               "secret_document", "Mật"),
        Poison(missing.record_id, missing.body, json_headers, "application/json",
               "record_invalid", "absent.pdf"),
    ]  # fmt: skip


def _counters(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_poison_records_are_dead_lettered_once_each_and_the_run_goes_on(
    amqp_world: AmqpWorld,
) -> None:
    world = amqp_world
    world.start_hub()
    factory = RecordFactory(world.run, signed_main_pdf(world.signer))
    claim_check = world.a.home / "claim-check"  # A's local.amqp.claim_check_dir
    claim_check.mkdir(parents=True, exist_ok=True)
    shutil.copy2(EXAMPLES / "spool" / CLAIM_CHECK_FILE, claim_check / CLAIM_CHECK_FILE)
    attachment = {"ten_tep": CLAIM_CHECK_FILE, "loai_tep": "application/pdf",
                  "tep_spool": CLAIM_CHECK_FILE}  # fmt: skip
    good: list[Record] = [factory.make(i, 1 if i == 3 else 0) for i in range(12)]
    good.append(factory.make(12, tep_dinh_kem=[attachment]))
    poison = _poison(factory)
    topology = world.topology["A"]
    b_inbound = world.collect(world.topology["B"].inbound_queue)
    dead = world.collect(topology.dead_letter_queue)
    events = world.collect(topology.events_queue)
    world.start()
    with world.producer() as producer:
        # Good and poison records interleaved: good ones after each poison one must still go.
        for index, bad in enumerate(poison):
            producer.publish(good[index])
            producer.publish_raw(
                bad.body,
                headers={"x-record-id": bad.record_id, **bad.headers},
                content_type=bad.content_type,
            )
        for record in good[len(poison) :]:
            producer.publish(record)
    world.wait(
        f"{len(good)} documents at B",
        lambda: len(documents_at_b(b_inbound.snapshot())) >= len(good),
        timeout=180,
    )
    world.wait(f"{len(poison)} dead letters", lambda: dead.count() >= len(poison), timeout=60)
    world.wait("A's outbound queue drained", lambda: queue_depth(topology.outbound_queue) == 0)
    time.sleep(2)  # a poison record coming round again would show by now

    assert_received_exactly(good, b_inbound.snapshot())
    attached = [m for m in b_inbound.snapshot() if m.headers["document-id"] == good[-1].document_id]
    _, files = attached[0].parts()
    original = (EXAMPLES / "spool" / CLAIM_CHECK_FILE).read_bytes()
    assert files[CLAIM_CHECK_FILE].startswith(original), "claim-check file not sent as sealed"

    letters = dead.snapshot()
    by_id = collections.Counter(str(m.headers.get("x-record-id")) for m in letters)
    assert by_id == collections.Counter(p.record_id for p in poison), by_id
    for bad in poison:
        (letter,) = [m for m in letters if m.headers.get("x-record-id") == bad.record_id]
        headers = letter.headers
        assert headers["x-connector-reason"] == bad.reason, (bad.record_id, headers)
        assert headers["x-connector-error-kind"] == "permanent"
        assert headers["x-connector-stage"], "no stage"
        assert bad.mentions in headers["x-connector-error"], headers["x-connector-error"]
        assert headers["x-connector-source-queue"] == topology.outbound_queue
        assert headers["x-connector-dead-lettered-at"]
        assert letter.body == bad.body, f"{bad.record_id}: dead letter body changed"
        for name, value in bad.headers.items():
            assert headers[name] == value, f"{bad.record_id}: header {name} not kept"

    refused = [e.json() for e in events.snapshot() if e.routing_key == "outbound.refused"]
    assert collections.Counter(e["local_id"] for e in refused) == by_id
    text = world.metrics("A")
    reasons = collections.Counter(p.reason for p in poison)
    counted = _counters(text, "connector_refused_records_total")
    for reason, count in reasons.items():
        assert counted[frozenset({("reason", reason)})] == count, (reason, counted)
    documents = _counters(text, "connector_documents_total")
    assert documents[frozenset({("direction", "outbound"), ("outcome", "refused")})] == len(poison)
    assert documents[frozenset({("direction", "outbound"), ("outcome", "sent")})] == len(good)
    assert queue_depth(topology.quarantine_queue) == 0


# ---------------------------------------------------------------------------- one per family
LIMITS = {"max_record_bytes": 1024 * 1024, "max_attachments": 3, "max_text_chars": 5000}


@dataclass(frozen=True)
class Family:
    name: str
    body: bytes
    headers: dict[str, str]
    properties: dict[str, str]  # content_type, content_encoding as published
    reason: str
    mentions: str


def _families(factory: RecordFactory, fifo_name: str) -> list[Family]:
    json_props = {"content_type": "application/json", "content_encoding": "binary"}
    mapping = {"x-mapping": MAPPING}
    duplicated = factory.make(950).body.replace(
        '"do_mat": "Thường"'.encode(), '"do_mat": "Tối mật", "do_mat": "Thường"'.encode())
    assert duplicated.count(b'"do_mat"') == 2
    legacy = (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_text("utf-8")
    hidden = legacy.replace("<DoMat>BT</DoMat>", '<DoMat Ma="Mat"/>').encode()
    pdf = {"ten_tep": "pl.pdf", "loai_tep": "application/pdf",
           "noi_dung_base64": factory.main_b64}  # fmt: skip
    return [
        Family("empty-binary", b"", {}, {"content_type": "application/data",
                                         "content_encoding": "binary"},
               "record_empty", "empty"),
        Family("gzip", factory.make(951).body, mapping,
               {**json_props, "content_encoding": "gzip"},
               "content_encoding_unsupported", "gzip"),
        Family("oversize", b'{"x": "' + b"a" * LIMITS["max_record_bytes"] + b'"}', mapping,
               json_props, "record_too_large", "max_record_bytes"),
        Family("duplicate-classification", duplicated, mapping, json_props,
               "record_malformed", "do_mat"),
        Family("deep-json", b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", mapping,
               json_props, "record_malformed", "nests too deeply"),
        Family("long-text", factory.make(952, trich_yeu="Ư" * (LIMITS["max_text_chars"] + 1))
               .body, mapping, json_props, "record_invalid", "max_text_chars"),
        Family("too-many-files", factory.make(953, tep_dinh_kem=[pdf] * 4).body, mapping,
               json_props, "record_invalid", "max_attachments"),
        Family("fifo-claim-check", factory.make(954, tep_dinh_kem=[
            {"ten_tep": "pl.pdf", "loai_tep": "application/pdf", "tep_spool": fifo_name}]).body,
               mapping, json_props, "record_invalid", "FIFO"),
        Family("classification-in-attribute", hidden, {"x-mapping": "legacy-xml"},
               {"content_type": "application/xml"}, "classification_unknown", "DoMat"),
    ]


def test_one_poison_of_each_family_between_two_good_ones(tmp_path: Path,
                                                        amqp_pki: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    world = AmqpWorld(tmp_path, amqp_pki, monkeypatch.setenv,
                      changes={**FAST_AMQP, "local": {**FAST_AMQP["local"], "limits": LIMITS}})
    try:
        _poison_between_good_ones(world)
    finally:
        world.close()


def _poison_between_good_ones(world: AmqpWorld) -> None:
    world.start_hub()
    factory = RecordFactory(world.run, signed_main_pdf(world.signer))
    claim_check = world.a.home / "claim-check"
    claim_check.mkdir(parents=True, exist_ok=True)
    os.mkfifo(claim_check / "pipe.pdf")  # would block a reader that opens it
    families = _families(factory, "pipe.pdf")
    topology = world.topology["A"]
    dead = world.collect(topology.dead_letter_queue)
    events = world.collect(topology.events_queue)
    pairs: dict[str, tuple[Record, Record]] = {}
    with world.producer() as producer:
        for index, family in enumerate(families):
            low, urgent = factory.make(2 * index, 0), factory.make(2 * index + 1, 2)
            pairs[family.name] = (low, urgent)
            producer.publish(low)
            producer.producer.publish(
                family.body, routing_key=producer.queue, delivery_mode=2, mandatory=True,
                headers={"x-record-id": f"POISON-{family.name}", **family.headers},
                **family.properties)
            producer.publish(urgent)
    world.start()
    good = [record for pair in pairs.values() for record in pair]
    world.wait(f"{len(good)} documents at the hub",
               lambda: len(world.world.hub_packages(sender=A_ID)) >= len(good), timeout=180)
    world.wait(f"{len(families)} dead letters", lambda: dead.count() >= len(families),
               timeout=60)
    time.sleep(2)  # a poison record coming round again would show by now

    order = [p.document_id for p in world.world.hub_packages(sender=A_ID)]
    assert sorted(order) == sorted(r.document_id for r in good), "a good record is missing"
    for name, (low, urgent) in pairs.items():
        assert order.index(urgent.document_id) < order.index(low.document_id), name
    letters = collections.Counter(str(m.headers.get("x-record-id")) for m in dead.snapshot())
    assert letters == collections.Counter(f"POISON-{f.name}" for f in families), letters
    for family in families:
        (letter,) = [m for m in dead.snapshot()
                     if m.headers.get("x-record-id") == f"POISON-{family.name}"]
        assert letter.headers["x-connector-reason"] == family.reason, (family.name, letter.headers)
        assert family.mentions in letter.headers["x-connector-error"], letter.headers
        assert letter.body == family.body, f"{family.name}: dead letter body changed"
    refused = collections.Counter(
        e.json()["local_id"] for e in events.snapshot() if e.routing_key == "outbound.refused")
    assert refused == letters
    assert world.healthz("A") == 200  # not "broker down" because of a poison message
