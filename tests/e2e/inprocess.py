"""In-process connectors for the daemon's unit-level tests: the real parts, no subprocess.

``runtime(world, agency)`` builds what ``connector run`` would build (``wiring.build``) from
the agency's configuration derived for tests (thread pool, no metrics server, quick
retries), so a test can call one pipeline stage at a time (``outbound.handle``,
``sender.send_round``, ``inbound.poll_once`` ...) against the real store, spool folder, keys
and the in-process hub emulator. ``RecordingSink`` and ``ListIntake`` stand in for a local
side where a test wants to see exactly what the pipeline handed over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.daemon import wiring
from connector.errors import ConnectorError
from connector.local.base import LocalDelivery, LocalEvent, LocalRecord
from connector.store.api import TrackedPackage
from connector.store.states import Direction, PackageKind
from connector.trust.pki import DemoPki, create_demo_pki
from tests.e2e.harness import FAST, Agency, World

IN_PROCESS: dict[str, Any] = {
    **FAST,
    "workers": {"pool_size": 2, "kind": "thread"},
    "metrics": {"enabled": False},
}


def runtime(
    world: World,
    agency: Agency,
    changes: dict[str, Any] | None = None,
    *,
    fault_hook: Callable[[str], None] | None = None,
) -> wiring.Runtime:
    """The agency's connector, built in this process (close it with ``runtime.close()``)."""
    merged = {**IN_PROCESS, **(changes or {})}
    config = load_config(world.derive(agency, merged), environ=world.env)
    return wiring.build(config, fault_hook=fault_hook, start_metrics=False)


def status_notices(built: wiring.Runtime) -> list[TrackedPackage]:
    """The status packages a connector has queued or sent (its 01s, 02s, commands)."""
    return [
        p
        for p in built.services.store.find(direction=Direction.OUTBOUND, limit=100)
        if p.kind is PackageKind.STATUS
    ]


@contextmanager
def running(world: World, agency: Agency, **kwargs: Any) -> Iterator[wiring.Runtime]:
    built = runtime(world, agency, **kwargs)
    try:
        yield built
    finally:
        built.close()


@dataclass
class RecordingSink:
    """A local side that keeps what it was handed (deliveries idempotent by id, like the
    real ones, but counting every call)."""

    deliveries: dict[str, LocalDelivery] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    events: list[LocalEvent] = field(default_factory=list)

    def deliver(self, delivery: LocalDelivery) -> None:
        self.calls.append(delivery.delivery_id)
        self.deliveries.setdefault(delivery.delivery_id, delivery)

    def emit(self, event: LocalEvent) -> None:
        self.events.append(event)

    def routing_keys(self) -> list[str]:
        return [e.routing_key for e in self.events]


@dataclass
class ListItem:
    """An intake item over a plain record; remembers how it was settled."""

    record: LocalRecord
    settled: str = ""
    error: ConnectorError | None = None

    def ack(self) -> None:
        self.settled = self.settled or "ack"

    def dead_letter(self, error: ConnectorError) -> None:
        self.settled = self.settled or "dead_letter"
        self.error = error

    def release(self) -> None:
        self.settled = self.settled or "release"


@dataclass
class ListIntake:
    """Hands out the given records once each."""

    items: list[ListItem]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(self, max_items: int, timeout: float) -> Sequence[ListItem]:
        with self.lock:
            taken, self.items = self.items[:max_items], self.items[max_items:]
        return taken


# -- fixtures (import them into a test module: ``from tests.e2e.inprocess import world``) ----


@pytest.fixture(scope="module")
def daemon_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return create_demo_pki(Path(tmp_path_factory.mktemp("daemon-pki")) / "pki")


@pytest.fixture
def world(tmp_path: Path, daemon_pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A world with the hub emulator started; agencies are built in-process by the test."""
    created = World(tmp_path, daemon_pki, monkeypatch.setenv)
    created.start_hub()
    try:
        yield created
    finally:
        created.close()
