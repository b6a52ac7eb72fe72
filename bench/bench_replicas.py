"""Benchmark: agency A as 1, 2 and 3 replicas on PostgreSQL, and the 1,000-record kill run.

Each run is its own world (``tests/e2e_amqp/replicas.py``, the code the replica test runs):
the hub emulator in this process, B as ``connector run`` on SQLite, and A as N ``connector
run`` processes of one configuration (RabbitMQ local side, PostgreSQL store on a fresh
schema). Records are metadata-only withdrawals (no files): the run measures how the
replicas share the work, not PDF cryptography.

* steady runs, 1, 2 and 3 replicas: documents/s from the first publish to the last document
  at the hub (outbound), and to the last 01 from B recorded at A (round trip);
* the kill run (the issue's: 1,000 records, 3 replicas, the inbox holder SIGKILLed at a
  quarter, another at half, the first restarted): its time, the inbox takeover, and whether
  every promise held (each document at B once, hub bytes = stored bytes, every 01 back).

Needs RabbitMQ and PostgreSQL (``CONNECTOR_TEST_AMQP_URL``, ``CONNECTOR_TEST_PG_DSN``);
prints a table, asserts nothing.

    .venv/bin/python -m bench.bench_replicas [--records N] [--kill-records N] [--no-kill]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from connector.trust.pki import DemoPki, create_demo_pki
from tests.e2e_amqp.harness import broker_problem
from tests.e2e_amqp.replicas import (
    KillRun,
    ReplicaWorld,
    SteadyRun,
    fresh_schema,
    kill_run,
    postgres_problem,
    steady_run,
)

T = TypeVar("T")


def _in_world(pki: DemoPki, replicas: int, run: Callable[[ReplicaWorld], T]) -> T:
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp, fresh_schema() as schema:
        world = ReplicaWorld.create(Path(tmp), pki, os.environ.__setitem__, schema, replicas)
        try:
            return run(world)
        finally:
            world.stop()
            world.amqp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=300, help="records per steady run")
    parser.add_argument("--kill-records", type=int, default=1000, help="records of the kill run")
    parser.add_argument("--no-kill", action="store_true", help="steady runs only")
    args = parser.parse_args()
    problem = broker_problem() or postgres_problem()
    if problem is not None:
        print(f"(skipped: {problem})")
        return
    print(f"{os.cpu_count()} CPU cores; B on SQLite; A's replicas on one PostgreSQL schema")
    with tempfile.TemporaryDirectory(prefix="bench-replicas-pki-") as folder:
        pki = create_demo_pki(Path(folder) / "pki")
        steady: list[SteadyRun] = []
        for count in (1, 2, 3):
            result = _in_world(pki, count, lambda w: steady_run(w, args.records))
            steady.append(result)
            print(f"  {count} replica(s): done", flush=True)
        killed: KillRun | None = None
        if not args.no_kill:
            killed = _in_world(pki, 3, lambda w: kill_run(w, args.kill_records))
    print()
    print(f"{'replicas':>8}  {'records':>7}  {'to hub docs/s':>13}  {'round trip docs/s':>17}  ok")
    for run in steady:
        print(
            f"{run.replicas:>8}  {run.records:>7}  {run.records / run.to_hub_seconds:>13.1f}  "
            f"{run.records / run.answered_seconds:>17.1f}  "
            f"{'yes' if not run.problems else 'NO: ' + run.problems[0]}"
        )
    if killed is not None:
        print()
        print(
            f"kill run: {killed.records} records, 3 replicas, the inbox holder killed at 1/4, "
            f"another at 1/2 ({killed.sent_at_second_kill} at the hub), the first restarted: "
            f"{killed.seconds:.1f}s ({killed.records / killed.seconds:.1f} docs/s round trip); "
            f"inbox taken over in {killed.takeover_seconds:.1f}s; sent by {killed.senders}"
        )
        print(
            "  every promise held"
            if not killed.problems
            else "  BROKEN: " + "; ".join(killed.problems[:5])
        )


if __name__ == "__main__":
    main()
