"""Benchmark: documents end to end over RabbitMQ (A's queue → A → hub → B → B's queue).

The hub emulator in this process and agencies A and B as ``connector run`` on the shipped
``config/connector-amqp*.yaml`` (unchanged settings: B polls the hub every second when idle),
with their own topology names on the local RabbitMQ. Agency software is plain kombu: a
producer on A's outbound queue, a consumer on B's inbound queue. The standard document: 10 KB
of metadata, a 200 KB main PDF with a personal signature, one 100 KB PDF attachment (A seals
both PDFs, encrypts them for B; B verifies everything). In one run:

* outbound only: B stopped, a burst of records; documents/s from the first publish to the
  last package at the hub;
* inbound only: B started on that backlog at the hub; documents/s between its first and its
  last delivery;
* end to end: a burst (documents/s, p50/p99 latency from publish at A to delivery at B,
  queueing included), then records one at a time (the latency of an idle pipeline);
* urgent: Hỏa tốc records published one at a time right behind a backlog of ordinary ones
  (metadata-only, to keep the broker small): their p99 latency.

Prints a table with the machine's load average (the machine is shared: read the numbers
with it); asserts nothing; deletes its queues and files.

    .venv/bin/python -m bench.bench_e2e [--standard N] [--idle N] [--backlog N] [--urgent N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pki import create_demo_pki
from tests.e2e.harness import A_ID
from tests.e2e_amqp.harness import (
    BROKER_URL,
    AmqpWorld,
    Collector,
    Record,
    RecordFactory,
    broker_problem,
    documents_at_b,
)

METADATA_BYTES = 10 * 1024
MAIN_PDF_BYTES = 200 * 1024
ATTACHMENT_BYTES = 100 * 1024
FAILURES = ("outbound.refused", "outbound.failed", "inbound.rejected")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _pdf_of(size: int, title: str) -> bytes:
    """A PDF of about ``size`` bytes (a scanned-page image), its own header included."""
    overhead = len(make_pdf((title,)))
    return make_pdf((title,), image_bytes=max(0, size - overhead))


def standard_factory(run: str, signer: Any) -> RecordFactory:
    # The personal signature adds about 10 KB.
    main = sign_pdf(_pdf_of(MAIN_PDF_BYTES - 10 * 1024, "Standard document"), signer)
    attachment = _pdf_of(ATTACHMENT_BYTES, "Attachment")
    factory = RecordFactory(run, main, attachments=[("phu-luc.pdf", attachment)])
    # Pad the metadata (the record without its files) to METADATA_BYTES.
    bare = json.loads(factory.make(0).body)
    bare["van_ban_chinh"]["noi_dung_base64"] = ""
    for item in bare.get("tep_dinh_kem", []):
        item["noi_dung_base64"] = ""
    without_files = len(json.dumps(bare, ensure_ascii=False).encode("utf-8"))
    padding = max(0, METADATA_BYTES - without_files)
    factory = RecordFactory(
        run, main, attachments=[("phu-luc.pdf", attachment)], metadata_padding=padding
    )
    print(
        f"  standard document: metadata {without_files + padding} B, main PDF {len(main)} B "
        f"(signed), attachment {len(attachment)} B; record body {len(factory.make(0).body)} B "
        "(files in base64)"
    )
    return factory


class Refused(RuntimeError):
    pass


_events: list[Collector] = []


def _wait(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for events in _events:
            failed = [e for e in events.snapshot() if e.routing_key in FAILURES]
            if failed:
                raise Refused(f"while waiting for {what}: {failed[0].json()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _arrivals(inbound: Collector) -> dict[str, float]:
    return {doc: ms[0].at for doc, ms in documents_at_b(inbound.snapshot()).items()}


def _arrived(inbound: Collector, record: Record) -> bool:
    return record.document_id in _arrivals(inbound)


def end_to_end(
    world: AmqpWorld, inbound: Collector, events: Collector, records: list[Record], idle: int
) -> tuple[float, list[float], list[float]]:
    """(documents/s, latencies under load, latencies when idle) for these records."""
    burst, single = records[: len(records) - idle], records[len(records) - idle :]
    published: dict[str, float] = {}
    done_before = events.count("status.01")
    with world.producer() as producer:
        started = time.time()
        for record in burst:
            published[record.document_id] = time.time()
            producer.publish(record)
        wanted = set(published)
        _wait(f"{len(burst)} documents at B", lambda: wanted <= set(_arrivals(inbound)), 3600)
        arrivals = _arrivals(inbound)
        finished = max(arrivals[d] for d in wanted)
        loaded = [arrivals[d] - published[d] for d in wanted]
        # Let the 01s of the burst go back to A before measuring an idle pipeline.
        _wait("the 01s at A", lambda: events.count("status.01") >= done_before + len(burst), 600)
        idle_latencies = []
        for record in single:
            at = time.time()
            producer.publish(record)
            _wait("one document at B", partial(_arrived, inbound, record), 120)
            idle_latencies.append(_arrivals(inbound)[record.document_id] - at)
            _wait(
                "its 01 at A",
                lambda: events.count("status.01") >= done_before + len(burst) + len(idle_latencies),
                120,
            )
    return len(burst) / (finished - started), loaded, idle_latencies


def _hub_count(world: AmqpWorld) -> int:
    return len(world.world.hub_packages(sender=A_ID, kind="edoc"))


def outbound_only(world: AmqpWorld, records: list[Record]) -> float:
    """A alone (B not running): documents/s from the first publish to the last at the hub."""
    before = _hub_count(world)
    with world.producer() as producer:
        started = time.time()
        producer.publish_all(records)
        wanted = before + len(records)
        _wait(f"{len(records)} documents at the hub", lambda: _hub_count(world) >= wanted, 3600)
    return len(records) / (time.time() - started)


def inbound_only(world: AmqpWorld, inbound: Collector, records: list[Record]) -> float:
    """B takes a backlog waiting at the hub: documents/s between its first and last delivery
    (B's start-up is not counted)."""
    wanted = {r.document_id for r in records}
    world.b.start()
    _wait(f"{len(records)} documents at B", lambda: wanted <= set(_arrivals(inbound)), 3600)
    arrivals = sorted(_arrivals(inbound)[d] for d in wanted)
    return (len(arrivals) - 1) / max(arrivals[-1] - arrivals[0], 1e-6)


def urgent_under_backlog(
    world: AmqpWorld, inbound: Collector, backlog: list[Record], urgent: list[Record]
) -> list[float]:
    """Urgent documents (Hỏa tốc) published right behind a backlog: publish-to-B latencies."""
    latencies = []
    with world.producer() as producer:
        producer.publish_all(backlog)
        for record in urgent:
            at = time.time()
            producer.publish(record)
            _wait("an urgent document at B", partial(_arrived, inbound, record), 600)
            latencies.append(_arrivals(inbound)[record.document_id] - at)
    return latencies


@dataclass
class Measured:
    outbound: float = float("nan")
    inbound: float = float("nan")
    e2e: float = float("nan")
    burst: list[float] | None = None
    idle: list[float] | None = None
    urgent: list[float] | None = None
    backlog: int = 0


def run(args: argparse.Namespace) -> Measured:
    measured = Measured(backlog=args.backlog)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        pki = create_demo_pki(tmp / "pki")
        saved = dict(os.environ)
        world = AmqpWorld(tmp / "world", pki, os.environ.__setitem__, changes={})
        try:
            world.start_hub()
            inbound = world.collect(world.topology["B"].inbound_queue)
            events = world.collect(world.topology["A"].events_queue)
            _events[:] = [events, world.collect(world.topology["B"].events_queue)]
            world.collect(world.topology["A"].inbound_queue)  # A's software takes its 01s
            standard = standard_factory(world.run, world.signer)
            metadata = RecordFactory(
                world.run, sign_pdf(make_pdf(("Metadata only",)), world.signer)
            )
            counter = iter(range(10**6))

            def make(factory: RecordFactory, count: int, urgency: int = 0) -> list[Record]:
                return [factory.make(next(counter), urgency) for _ in range(count)]

            world.a.start()
            print(f"  outbound only: {args.standard} standard records, B stopped ...", flush=True)
            outbound_only(world, make(standard, 1))  # warm-up: every stage and process
            first = make(standard, args.standard)
            measured.outbound = outbound_only(world, first)
            print(f"  inbound only: B takes those {args.standard} from the hub ...", flush=True)
            measured.inbound = inbound_only(world, inbound, first)
            print(f"  end to end: {args.standard} standard records, then {args.idle} "
                  "one at a time ...", flush=True)
            rate, loaded, idle = end_to_end(
                world, inbound, events, make(standard, args.standard + args.idle), args.idle
            )
            measured.e2e, measured.burst, measured.idle = rate, loaded, idle
            if args.backlog:
                print(f"  urgent: {args.urgent} Hỏa tốc records behind {args.backlog} "
                      "metadata-only ones ...", flush=True)
                measured.urgent = urgent_under_backlog(
                    world, inbound, make(metadata, args.backlog), make(metadata, args.urgent, 3)
                )
            print(f"  (the hub took {_hub_count(world)} documents from A)")
        finally:
            world.close()
            os.environ.clear()
            os.environ.update(saved)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--standard", type=int, default=100, help="standard records per run")
    parser.add_argument("--idle", type=int, default=10, help="records sent one at a time")
    parser.add_argument("--backlog", type=int, default=500, help="records queued before urgent")
    parser.add_argument("--urgent", type=int, default=10, help="urgent records behind them")
    args = parser.parse_args()
    problem = broker_problem()
    if problem is not None:
        print(f"(skipped: {problem})")
        return
    print(
        f"RabbitMQ at {BROKER_URL.rsplit('@', 1)[-1]}; "
        f"{os.cpu_count()} CPU cores; shipped configurations (hub polled every 1 s when "
        "idle, worker pool of 2)",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    m = run(args)
    load_after = os.getloadavg()[0]
    burst, idle, urgent = m.burst or [], m.idle or [], m.urgent or []
    rows = [
        ("outbound only (A to hub), standard", f"{m.outbound:.2f} docs/s", ">= 40"),
        ("inbound only (hub to B), standard", f"{m.inbound:.2f} docs/s", ">= 40"),
        ("end to end (A to B), standard", f"{m.e2e:.2f} docs/s", ""),
        ("burst latency p50 / p99", f"{percentile(burst, 0.5):.2f} / "
         f"{percentile(burst, 0.99):.2f} s", ""),
        ("idle latency p50 / p99", f"{percentile(idle, 0.5):.2f} / "
         f"{percentile(idle, 0.99):.2f} s", "p50 <= 0.3"),
        (f"urgent p99 behind {m.backlog} queued", f"{percentile(urgent, 0.99):.2f} s"
         if urgent else "not run", ""),
    ]
    print()
    print(f"load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end")
    print(f"{'measure':<40} {'value':>16} {'target':>10}")
    for name, value, target in rows:
        print(f"{name:<40} {value:>16} {target:>10}")
    print(
        "\nstandard: 10 KB metadata, 200 KB signed main PDF, 100 KB PDF attachment. Latency: "
        "publish at A to delivery at B. Urgent: Hỏa tốc metadata-only records published one at "
        "a time right behind a backlog of ordinary metadata-only ones."
    )


if __name__ == "__main__":
    main()
