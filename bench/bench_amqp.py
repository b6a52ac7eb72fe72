"""Benchmark: RabbitMQ through the AMQP local side next to plain kombu, in one run.

For a metadata-only record (~10 KB of JSON) and a record carrying a 300 KB document
(base64 in the JSON body), measures messages per second for

* intake: agency records consumed and acknowledged one by one (prefetch 32): a plain kombu
  consumer vs ``AmqpLocalSide.fetch`` + ``IntakeItem.ack`` (consumer thread, marshalled acks);
* sink: persistent publishes each waiting for its publisher confirm: plain kombu
  (``confirm_publish``, ``mandatory``) vs ``AmqpLocalSide.deliver`` (the same guarantees);
  plus plain kombu without confirms, which guarantees nothing, for scale.

Prints a table with the adapter/plain ratio; asserts nothing. Uses its own queue names
and deletes them afterwards.

    .venv/bin/python bench/bench_amqp.py [--count N] [--url amqp://...]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import kombu

from connector.local.amqp import AmqpLocalSide
from connector.local.amqp_settings import AmqpSettings, AmqpTopology
from connector.local.amqp_topology import declare_topology, delete_topology
from connector.local.base import DeliveryKind, LocalDelivery

PREFETCH = 32
_CONNECTION: Any = kombu.Connection  # type: ignore[attr-defined]  # kombu is not annotated
_QUEUE: Any = kombu.Queue  # type: ignore[attr-defined]


def record_body(index: int, document_bytes: int) -> bytes:
    record: dict[str, object] = {
        "id": f"bench-{index:06d}",
        "so_ky_hieu": f"{index}/UBND-VP",
        "trich_yeu": "Về việc triển khai kết nối liên thông văn bản điện tử " * 2,
        "noi_nhan": [{"ma": f"000.00.{n:02d}.H12", "ten": "Sở " + "x" * 80} for n in range(20)],
        "ghi_chu": "Nội dung " * 900,  # brings the metadata to ~10 KB
    }
    if document_bytes:
        record["van_ban"] = {"ten": "congvan.pdf",
                             "noi_dung": base64.b64encode(os.urandom(document_bytes)).decode()}
    return json.dumps(record, ensure_ascii=False).encode()


def rate(count: int, action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def publish_plain(url: str, queue: str, body: bytes, count: int, *, confirm: bool) -> None:
    options = {"confirm_publish": True} if confirm else {}
    with _CONNECTION(url, transport_options=options) as conn:
        producer = conn.Producer()
        for index in range(count):
            producer.publish(body, routing_key=queue, content_type="application/json",
                             headers={"x-record-id": f"bench-{index}"}, delivery_mode=2,
                             mandatory=confirm)


def consume_plain(url: str, queue: str, count: int) -> None:
    received = 0

    def on_message(message: Any) -> None:
        nonlocal received
        message.ack()
        received += 1

    with _CONNECTION(url) as conn:
        consumer = conn.Consumer(_QUEUE(queue, no_declare=True), accept=None,
                                 on_message=on_message, prefetch_count=PREFETCH)
        with consumer:
            while received < count:
                conn.drain_events(timeout=10)


def consume_adapter(settings: AmqpSettings, count: int) -> None:
    side = AmqpLocalSide(settings)
    side.start()
    acked = 0
    try:
        while acked < count:
            for item in side.fetch(PREFETCH, 10):
                item.ack()
                acked += 1
        side._consumer.flush(10)  # every ack applied on the broker, for a fair comparison
    finally:
        side.close()


def deliver_adapter(side: AmqpLocalSide, body: bytes, count: int) -> None:
    for index in range(count):
        side.deliver(LocalDelivery(f"bench-{index}", DeliveryKind.DOCUMENT, body,
                                   "application/json"))


def purge(url: str, queue: str) -> None:
    with _CONNECTION(url) as conn:
        conn.channel().queue_purge(queue)


def run(url: str, count: int) -> list[tuple[str, str, float, float | None]]:
    topology = AmqpTopology.prefixed(f"bench-{uuid.uuid4().hex[:8]}.")
    settings = AmqpSettings(url=url, topology=topology, prefetch=PREFETCH)
    with _CONNECTION(url) as conn:
        declare_topology(conn.channel(), topology)
    rows: list[tuple[str, str, float, float | None]] = []
    try:
        for label, document_bytes, n in (("10 KB metadata", 0, count),
                                         ("+300 KB document", 300 * 1024, max(50, count // 10))):
            body = record_body(0, document_bytes)
            size = f"{label} ({len(body) // 1024} KB)"
            queue = topology.outbound_queue

            publish_plain(url, queue, body, n, confirm=True)
            plain = rate(n, partial(consume_plain, url, queue, n))
            publish_plain(url, queue, body, n, confirm=True)
            adapter = rate(n, partial(consume_adapter, settings, n))
            rows.append(("intake: consume + ack", size, plain, adapter))

            plain = rate(n, partial(publish_plain, url, queue, body, n, confirm=True))
            purge(url, queue)
            side = AmqpLocalSide(settings)
            side.start()
            try:
                side.deliver(LocalDelivery("warm-up", DeliveryKind.DOCUMENT, b"{}",
                                           "application/json"))
                adapter = rate(n, partial(deliver_adapter, side, body, n))
            finally:
                side.close()
            purge(url, topology.inbound_queue or "")
            rows.append(("sink: confirmed publish", size, plain, adapter))

            unconfirmed = rate(n, partial(publish_plain, url, queue, body, n, confirm=False))
            purge(url, queue)
            rows.append(("plain publish, no confirm", size, unconfirmed, None))
    finally:
        with _CONNECTION(url) as conn:
            delete_topology(conn.channel(), topology)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000, help="messages per 10 KB run")
    parser.add_argument("--url", default=os.environ.get("CONNECTOR_AMQP_URL",
                                                        "amqp://guest:guest@127.0.0.1:5672//"))
    args = parser.parse_args()
    try:
        with _CONNECTION(args.url, connect_timeout=3) as conn:
            conn.connect()
    except Exception as exc:
        print(f"(skipped: no RabbitMQ at {args.url}: {exc})")
        return
    rows = run(args.url, args.count)
    print(f"RabbitMQ at {args.url}; prefetch {PREFETCH}; persistent messages; "
          f"{args.count} metadata-only and {max(50, args.count // 10)} large records")
    print(f"{'scenario':<28} {'body':<26} {'plain kombu/s':>14} {'adapter/s':>10} {'ratio':>6}")
    for scenario, size, plain, adapter in rows:
        adapter_text = f"{adapter:10.0f}" if adapter is not None else f"{'-':>10}"
        ratio = f"{adapter / plain:6.2f}" if adapter is not None else f"{'-':>6}"
        print(f"{scenario:<28} {size:<26} {plain:14.0f} {adapter_text} {ratio}")


if __name__ == "__main__":
    main()
