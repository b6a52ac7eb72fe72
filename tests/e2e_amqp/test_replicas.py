"""Three replicas of agency A share its work; two are SIGKILLed mid-run, one is restarted.

The replicas are ``connector run`` processes with one configuration (RabbitMQ local side,
PostgreSQL store on a fresh schema): competing consumers on A's outbound queue, claims on
the shared store, one of them on inbox duty. Records are metadata-only (no files), so the
run measures sharing and failover, not PDF cryptography (``tests/e2e_amqp/replicas.py``).

The run: B and the replicas start, a replica takes the inbox duty, the records are
published; with a quarter of them at the hub the duty holder is killed, with half of them
another replica; the first one killed is started again. Then: every document at B exactly
once, every package at the hub byte-identical to the one A stored and no document there
as two packages, every 01 from B recorded at A; the inbox polled by one replica at a time,
and by another within 10 s of the holder's death; more than one replica sent.

``CONNECTOR_E2E_REPLICA_RECORDS`` sets the number of records. The issue's 1,000 do not fit
the 3 minutes this test may take on the shared 2-core machine (measured: 245 s from the
first publish, 5 min in all), so it runs 400 (300 measured: 58 s, 99 s in all); the
1,000-record run is ``python -m bench.bench_replicas``, the same code (``kill_run``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.trust.pki import DemoPki
from tests.e2e_amqp.replicas import (
    TAKEOVER_SECONDS,
    ReplicaWorld,
    fresh_schema,
    kill_run,
    postgres_problem,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(600)]

RECORDS = int(os.environ.get("CONNECTOR_E2E_REPLICA_RECORDS", "400"))


@pytest.fixture
def replica_world(
    tmp_path: Path, amqp_pki: DemoPki, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ReplicaWorld]:
    problem = postgres_problem()
    if problem is not None:
        pytest.skip(problem)
    with fresh_schema() as schema:
        world = ReplicaWorld.create(tmp_path, amqp_pki, monkeypatch.setenv, schema, count=3)
        try:
            yield world
        finally:
            world.stop()
            world.amqp.close()


def test_three_replicas_share_the_work_and_carry_on_when_two_are_killed(
    replica_world: ReplicaWorld,
) -> None:
    run = kill_run(replica_world, RECORDS)
    assert not run.problems, "\n".join(run.problems)
    assert run.takeover_seconds < TAKEOVER_SECONDS
    assert run.sent_at_second_kill < RECORDS, "the second kill came after the run"
    assert sum(1 for n in run.senders.values() if n) >= 2, run.senders  # the work was shared
    print(
        f"\n{RECORDS} records, 3 replicas, 2 killed, 1 restarted: {run.seconds:.1f}s; "
        f"inbox taken over in {run.takeover_seconds:.1f}s; sent by {run.senders}"
    )
