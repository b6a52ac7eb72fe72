"""Harness for N replicas of agency A: ``connector run`` processes with one configuration
(RabbitMQ local side, PostgreSQL tracking store) sharing A's work, agency B on SQLite.

:class:`ReplicaWorld` builds on :class:`tests.e2e_amqp.harness.AmqpWorld` (hub emulator in
this process, this run's own topology, B as ``connector run``) and adds:

* A's configuration derived from ``config/connector-amqp.yaml`` with ``store.type:
  postgres`` on a fresh schema of the test database (``CONNECTOR_TEST_PG_DSN``);
* replicas ``A1`` … ``An``: the same configuration, each its own process and log folder,
  started, SIGKILLed and restarted one by one;
* metadata-only records (no files): what is measured is the sharing of work, not PDF crypto;
* the checks every replica run must pass: each record's document at B exactly once, each
  A package at the hub byte-identical to the one A stored, every 01 back at A;
* the inbox duty as the replicas' logs show it: who took it, when.

The test (``test_replicas.py``) and the bench (``bench/bench_replicas.py``) use it. This
module runs no test.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from connector.store.api import PackageFilter, TrackedPackage
from connector.store.postgres import PostgresStore
from connector.store.postgres_db import check_reachable
from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from connector.trust.atrest import PayloadCipher
from connector.trust.pki import DemoPki
from tests.e2e.harness import A_ID, B_ID, EXAMPLES, Agency, derive_config, today
from tests.e2e_amqp.harness import (
    CONFIG_AMQP_A,
    FAST_AMQP,
    MAPPING,
    AmqpWorld,
    Collector,
    Producer,
    Received,
    Record,
    _merged,
    documents_at_b,
)

PG_DSN = os.environ.get(
    "CONNECTOR_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
DSN_ENV = "CONNECTOR_REPLICA_STORE_DSN"
DUTY_TAKEN = re.compile(r"^(\S+) .*polling the hub inbox \(duty inbox:")


def postgres_problem() -> str | None:
    """None when the test database answers, else why not."""
    why = check_reachable(PG_DSN, timeout=2)
    return None if why is None else f"PostgreSQL not reachable at '{PG_DSN}': {why}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new, empty schema of the test database, dropped afterwards."""
    name = f"replicas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def metadata_records(run: str, count: int) -> list[Record]:
    """``count`` records of A without any file: withdrawals (``thu_hoi``, the one kind of
    document the standard sends without a main document) of as many earlier documents, each
    with its own id, number and subject."""
    template = json.loads((EXAMPLES / MAPPING / "05-revoke.json").read_text("utf-8"))
    records = []
    for index in range(count):
        record = copy.deepcopy(template)
        record.pop("van_ban_chinh", None)
        number = str(100000 + index)
        subject = f"V/v thu hồi văn bản, kiểm thử nhiều bản sao, số {number} ({run})"
        record.update(
            id=f"E2E-{run}-{index:05d}",
            so=number,
            ngay_ban_hanh=today().isoformat(),
            trich_yeu=subject,
        )
        record["nghiep_vu"]["ma_dinh_danh_goc"] = f"{A_ID},{today():%Y/%m/%d},{number}/SNV-CU"
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        records.append(Record(record["id"], number, subject, 0, data))
    return records


@dataclass
class DutyTaking:
    replica: str
    at: float  # POSIX seconds, from the replica's log line


@dataclass
class ReplicaWorld:
    """The hub, N replicas of A on one PostgreSQL schema, and B; see the module docstring."""

    amqp: AmqpWorld
    schema: str
    count: int
    replicas: list[Agency] = field(default_factory=list)
    killed_at: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def create(
        cls, tmp: Path, pki: DemoPki, environ: Callable[[str, str], None], schema: str, count: int
    ) -> ReplicaWorld:
        amqp = AmqpWorld(tmp, pki, environ)
        world = amqp.world
        world.env[DSN_ENV] = make_conninfo(PG_DSN, options="-c synchronous_commit=off")
        changes: dict[str, Any] = _merged(
            FAST_AMQP,
            {
                "store": {
                    "type": "postgres",
                    "path": None,
                    "dsn_env": DSN_ENV,
                    "schema_name": schema,
                    "pool_size": 4,
                },
                "workers": {"pool_size": 1},
                # A lease outlives a slow round on a busy machine; a dead replica's leases go
                # with its database session, not with this timeout.
                "polling": {"lease_seconds": 30},
            },
        )
        if "CONNECTOR_AMQP_PASSWORD" in world.env:
            changes = _merged(
                changes, {"local": {"amqp": {"password_env": "CONNECTOR_AMQP_PASSWORD"}}}
            )
        config = derive_config(CONFIG_AMQP_A, tmp / "config" / "agency-a-replicas.yaml", changes)
        world.a.config = config
        created = cls(amqp, schema, count)
        for index in range(1, count + 1):
            home = tmp / f"replica-a{index}"
            home.mkdir(parents=True, exist_ok=True)
            created.replicas.append(Agency(f"A{index}", A_ID, config, home, world.env))
        return created

    # -- processes ------------------------------------------------------------------------
    def start_all(self) -> None:
        for replica in self.replicas:
            replica.start()

    def kill(self, replica: Agency) -> float:
        """SIGKILL; the time it happened."""
        assert replica.process is not None
        replica.process.kill()
        replica.process.wait()
        at = time.time()
        self.killed_at.setdefault(replica.name, []).append(at)
        return at

    def alive(self) -> list[Agency]:
        return [r for r in self.replicas if r.running]

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()

    # -- what the logs say about the inbox duty ---------------------------------------------
    def duty_takings(self) -> list[DutyTaking]:
        taken = []
        for replica in self.replicas:
            for log in replica.logs:
                if not log.exists():
                    continue
                for line in log.read_text("utf-8", "replace").splitlines():
                    found = DUTY_TAKEN.match(line)
                    if found:
                        at = dt.datetime.fromisoformat(found.group(1)).timestamp()
                        taken.append(DutyTaking(replica.name, at))
        return sorted(taken, key=lambda t: t.at)

    def duty_holder(self) -> Agency | None:
        """The living replica that last took the inbox duty."""
        takings = self.duty_takings()
        if not takings:
            return None
        holder = next(r for r in self.replicas if r.name == takings[-1].replica)
        return holder if holder.running else None

    # -- the store A's replicas share -------------------------------------------------------
    @contextmanager
    def store(self) -> Iterator[PostgresStore]:
        cipher = PayloadCipher.from_sources(key_file=self.amqp.a.key_file)
        opened = PostgresStore(self.amqp.world.env[DSN_ENV], cipher, schema=self.schema)
        try:
            yield opened
        finally:
            opened.close()

    def outbound_documents(self, store: PostgresStore) -> list[TrackedPackage]:
        found = store.find(direction=Direction.OUTBOUND, limit=1_000_000)
        return [p for p in found if p.kind is PackageKind.EDOC]


def sent_count(world: ReplicaWorld) -> int:
    """A's documents the hub holds."""
    return len(world.amqp.world.hub_packages(sender=A_ID, kind="edoc"))


def check_run(world: ReplicaWorld, records: list[Record], received: list[Received]) -> list[str]:
    """Every promise of a replica run; the broken ones, described (empty: all kept)."""
    problems: list[str] = []
    expected = {r.document_id for r in records}
    at_b = documents_at_b(received)
    missing = expected - set(at_b)
    if missing:
        problems.append(f"{len(missing)} document(s) never reached B: {sorted(missing)[:3]}")
    if set(at_b) - expected:
        problems.append(f"B received documents nobody sent: {sorted(set(at_b) - expected)[:3]}")
    twice = [d for d, messages in at_b.items() if len(messages) > 1]
    if twice:
        problems.append(f"{len(twice)} document(s) delivered to B twice: {twice[:3]}")
    hub = world.amqp.world.hub_packages(sender=A_ID, kind="edoc")
    by_document: dict[str, list[Any]] = {}
    for stored in hub:
        by_document.setdefault(stored.document_id, []).append(stored)
    built_twice = [d for d, packages in by_document.items() if len(packages) > 1]
    if built_twice:
        problems.append(
            f"{len(built_twice)} document(s) at the hub as two packages: {built_twice[:3]}"
        )
    with world.store() as store:
        documents = world.outbound_documents(store)
        if len(documents) != len(records):
            problems.append(f"A's store tracks {len(documents)} documents, {len(records)} sent")
        hub_by_id = {p.doc_id: p for p in hub}
        for package in documents:
            if package.state is not OutboundState.SENT or package.hub_id not in hub_by_id:
                problems.append(f"#{package.id} is {package.state.value}, hub id {package.hub_id}")
                continue
            if hub_by_id[package.hub_id].data != store.raw(package.id):
                problems.append(f"#{package.id}: the hub's bytes are not the stored package")
            states = {r.organ_id: r.state for r in store.recipients(package.id)}
            if states.get(B_ID) is not RecipientState.ARRIVED:
                problems.append(f"#{package.id}: B's 01 not recorded ({states})")
    return problems[:20]


def answered(world: ReplicaWorld, total: int) -> bool:
    """Every document of A SENT and its 01 from B recorded."""
    with world.store() as store:
        documents = world.outbound_documents(store)
        if len(documents) < total:
            return False
        for waiting in (RecipientState.PENDING, RecipientState.SENT):
            where = PackageFilter(direction=Direction.OUTBOUND, recipient_state=waiting)
            if store.find_matching(where, limit=1):
                return False
        return all(p.state is OutboundState.SENT for p in documents)


def collect_b(world: AmqpWorld) -> Collector:
    queue = world.topology["B"].inbound_queue
    return world.collect(queue)


def publish(world: AmqpWorld, records: list[Record]) -> None:
    with Producer(world.topology["A"].outbound_queue) as producer:
        producer.publish_all(records)


# -- the runs (the test and the bench run the same code) ----------------------------------------

TAKEOVER_SECONDS = 10.0
SENT_LINE = re.compile(r"package #\d+ sent as hub id")


def _watched(world: ReplicaWorld) -> list[Agency]:
    return [world.amqp.b, *world.alive()]


def _start(world: ReplicaWorld) -> Collector:
    """Hub, B's consumer, B and every replica; returns once one replica is on inbox duty."""
    amqp = world.amqp
    amqp.start_hub()
    received = collect_b(amqp)
    amqp.b.start()
    world.start_all()
    amqp.wait("a replica on inbox duty", world.duty_holder, timeout=120)
    return received


@dataclass
class SteadyRun:
    """Records through N replicas that all stay up."""

    records: int
    replicas: int
    to_hub_seconds: float  # first publish → the last document at the hub
    answered_seconds: float  # first publish → the last 01 recorded at A
    problems: list[str]


def steady_run(world: ReplicaWorld, count: int) -> SteadyRun:
    amqp = world.amqp
    received = _start(world)
    records = metadata_records(amqp.run, count)
    started = time.monotonic()
    publish(amqp, records)
    amqp.wait(
        "every document at the hub",
        lambda: sent_count(world) >= count,
        timeout=600,
        interval=0.1,
        watch=_watched(world),
    )
    to_hub = time.monotonic() - started
    amqp.wait(
        "every 01 back at A",
        lambda: answered(world, count),
        timeout=600,
        interval=0.5,
        watch=_watched(world),
    )
    answered_at = time.monotonic() - started
    amqp.wait("every document at B", lambda: len(received.snapshot()) >= count, timeout=60)
    return SteadyRun(
        count,
        len(world.replicas),
        to_hub,
        answered_at,
        check_run(world, records, received.snapshot()),
    )


@dataclass
class KillRun:
    """Records through 3 replicas; the inbox holder killed at 1/4, another at 1/2, the first
    restarted."""

    records: int
    seconds: float  # first publish → every 01 recorded at A
    takeover_seconds: float  # the holder's death → another replica's taking of the inbox
    sent_at_second_kill: int
    senders: dict[str, int]  # documents each replica logged as sent
    problems: list[str]  # promises broken (see check_run and the duty checks)


def kill_run(world: ReplicaWorld, count: int) -> KillRun:
    amqp = world.amqp
    received = _start(world)
    holder = world.duty_holder()
    assert holder is not None
    records = metadata_records(amqp.run, count)
    started = time.monotonic()
    publish(amqp, records)

    amqp.wait(
        "a quarter of the documents at the hub",
        lambda: sent_count(world) >= count // 4,
        timeout=300,
        watch=_watched(world),
    )
    killed_at = world.kill(holder)
    taking = amqp.wait(
        "another replica on inbox duty",
        lambda: next((t for t in world.duty_takings() if t.at > killed_at), None),
        timeout=60,
        watch=_watched(world),
    )
    amqp.wait(
        "half of the documents at the hub",
        lambda: sent_count(world) >= count // 2,
        timeout=300,
        watch=_watched(world),
    )
    at_second_kill = sent_count(world)
    second = next(r for r in world.alive() if r.name != taking.replica)
    world.kill(second)
    holder.start()  # the first one killed comes back

    amqp.wait(
        f"all {count} documents sent and their 01s back at A",
        lambda: answered(world, count),
        timeout=600,
        interval=1.0,
        watch=_watched(world),
    )
    amqp.wait("every document at B", lambda: len(received.snapshot()) >= count, timeout=60)
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # anything sent twice would arrive now

    problems = check_run(world, records, received.snapshot())
    if taking.replica == holder.name or taking.at - killed_at >= TAKEOVER_SECONDS:
        problems.append(
            f"{taking.replica} took the inbox {taking.at - killed_at:.1f}s after {holder.name} died"
        )
    # One replica at a time: each taker of the inbox duty took it after the previous died.
    takings = world.duty_takings()
    for before, after in itertools.pairwise(takings):
        deaths = [at for at in world.killed_at.get(before.replica, []) if at > before.at]
        if not deaths or deaths[0] > after.at:
            problems.append(f"{after.replica} took the inbox while {before.replica} held it")
    senders = {r.name: len(SENT_LINE.findall(r.log_text())) for r in world.replicas}
    return KillRun(count, elapsed, taking.at - killed_at, at_second_kill, senders, problems)
