"""Two replicas of agency B on one PostgreSQL store, built in this process with the real
pipeline against the hub emulator: exactly one polls B's inbox; when it dies the other takes
the duty over within seconds and carries on. Each document reaches B's local side once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from connector.config import load_config
from connector.daemon import inbound, outbound, sender, wiring
from connector.daemon.retry import DependencyBackoff
from connector.interconnect.base import MessageType, PendingItem
from connector.store.states import Direction, InboundState
from tests.e2e.harness import World
from tests.e2e.inprocess import IN_PROCESS, daemon_pki, runtime, world  # noqa: F401


@dataclass
class Replica:
    name: str
    built: wiring.Runtime
    stop: threading.Event = field(default_factory=threading.Event)
    polls: list[float] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        hub = self.built.services.hub
        real_pending = hub.pending

        def counted(message_type: MessageType) -> list[PendingItem]:
            self.polls.append(time.monotonic())
            return real_pending(message_type)

        hub.pending = counted  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=inbound.inbound_loop, args=(self.built.services, self.stop), daemon=True
        )
        self.thread.start()

    def die(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=30)
        self.built.close()  # its store session, and the duty with it, end here


@pytest.fixture
def replicas(
    world: World,  # noqa: F811
    pg_dsn: str,
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], Replica]]:
    monkeypatch.setenv("TEST_REPLICA_STORE_DSN", pg_dsn)
    changes: dict[str, Any] = {
        **IN_PROCESS,
        "store": {
            "type": "postgres",
            "path": None,
            "dsn_env": "TEST_REPLICA_STORE_DSN",
            "schema_name": pg_schema,
        },
    }
    opened: list[Replica] = []

    def open_replica(name: str) -> Replica:
        config = load_config(world.derive(world.b, changes), environ=world.env)
        # The spool side stays single-instance; the replicas here share B's folder.
        built = wiring.build(config, start_metrics=False, exclusive_local=False)
        replica = Replica(name, built)
        opened.append(replica)
        return replica

    yield open_replica
    for replica in opened:
        if not replica.stop.is_set():
            replica.die()


def _send_from_a(world: World, a: wiring.Runtime, name: str) -> str:  # noqa: F811
    record = world.json_record(name)
    world.a.drop_record(record)
    (item,) = a.services.intake.fetch(1, 5.0)
    outbound.handle(a.services, item)
    sender.send_round(a.services, DependencyBackoff(a.services.retry))
    return record.record_id


def _wait(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.1)


def test_one_replica_polls_the_inbox_and_the_other_takes_over_when_it_dies(
    world: World,  # noqa: F811
    replicas: Callable[[str], Replica],
) -> None:
    a = runtime(world, world.a)
    try:
        first, second = replicas("first"), replicas("second")
        first.start()
        _wait(lambda: bool(first.polls), "the first replica's first poll")
        second.start()
        _send_from_a(world, a, "01-ordinary.json")
        store = first.built.services.store

        def delivered(count: int) -> Callable[[], bool]:
            return lambda: (
                len(world.b.deliveries()) >= count
                and all(
                    p.inbound_state is InboundState.NOTIFIED
                    for p in store.find(direction=Direction.INBOUND)
                    if p.kind.value == "edoc"
                )
            )

        _wait(delivered(1), "the first document's delivery")
        time.sleep(1.0)  # several inbox rounds: the standby must not poll in any of them
        assert first.polls and not second.polls

        died_at = time.monotonic()
        first.die()
        _send_from_a(world, a, "03-attachments.json")
        _wait(lambda: bool(second.polls), "the standby's first poll", within=10.0)
        assert second.polls[0] - died_at < 10.0
        second_store = second.built.services.store
        _wait(lambda: len(world.b.deliveries()) >= 2, "the second document's delivery")
        _wait(
            lambda: all(
                p.inbound_state is InboundState.NOTIFIED
                for p in second_store.find(direction=Direction.INBOUND)
                if p.kind.value == "edoc"
            ),
            "the second document's 01",
        )
        assert len(world.b.deliveries()) == 2
        inbound_documents = [
            p for p in second_store.find(direction=Direction.INBOUND) if p.kind.value == "edoc"
        ]
        assert len(inbound_documents) == 2  # each document taken in once
    finally:
        a.close()
