"""The sender against the real hub emulator, VXP client and SQLite store (fake clock).

Urgent first; the stored bytes go out unchanged; a 5xx waits without spending an attempt; an
ambiguous failure (lost answer, timeout) is retried with growing back-off and the same bytes,
which the hub recognises; a permanent refusal ends FAILED with the reason; an HMAC refusal
(wrong secret, stale timestamp, altered signed header) is a configuration problem, never a
message failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.daemon import sender
from connector.daemon.ports import Services, Timing
from connector.daemon.retry import DependencyBackoff, RetryPolicy
from connector.edxml.model import Organization
from connector.hub import HubEmulator
from connector.interconnect import Secret, VxpClient, VxpSettings, vxp_wire
from connector.store.api import NewOutbound, PackageFacts, PlaintextCipherForTests
from connector.store.sqlite import SqliteStore
from connector.store.states import OutboundState, PackageKind, RecipientState
from connector.timeutil import VN_TZ
from tests.e2e.inprocess import RecordingSink
from tests.hub.harness import SECRETS, SYSTEMS, A, B, edoc_bytes, hub_config

POLICY = RetryPolicy(max_attempts=3, base_delay=2.0, max_delay=8.0, jitter=0.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubEmulator]:
    emulator = HubEmulator(hub_config(tmp_path / "hub.sqlite"))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "store.sqlite", PlaintextCipherForTests(), clock=clock)
    yield opened
    opened.close()


def _client(
    hub: HubEmulator, *, secret: Secret | None = None, transport: Any = None, read: float = 5.0
) -> VxpClient:
    systemid = SYSTEMS[A]
    settings = VxpSettings(
        endpoint=hub.url,
        systemid=systemid,
        secret=secret or SECRETS[systemid],
        read_timeout=read,
        connect_timeout=2.0,
    )
    return VxpClient(settings, transport=transport)


def _services(store: SqliteStore, client: VxpClient, clock: Clock) -> Services:
    unused: Any = None  # the sender needs no mapping, PDF, crypto or intake
    return Services(
        agency=Organization(A, organ_name="Sở Nội vụ (thử nghiệm)"),
        store=store,
        hub=client,
        intake=unused,
        sink=RecordingSink(),
        mapper=unused,
        pdf=unused,
        crypto=unused,
        signer=unused,
        verifier=unused,
        pool=unused,
        retry=POLICY,
        timing=Timing(batch=10, lease_seconds=60.0),
        worker_id="test-sender",
        clock=clock,
    )


@pytest.fixture
def services(hub: HubEmulator, store: SqliteStore, clock: Clock) -> Iterator[Services]:
    client = _client(hub)
    yield _services(store, client, clock)
    client.close()


def _ready(store: SqliteStore, clock: Clock, name: str, priority: int = 0) -> tuple[int, bytes]:
    document_id = f"{A},2026/11/20,{name}"
    raw = edoc_bytes(A, (B,), document_id=document_id, priority=priority)
    added = store.add_outbound(
        NewOutbound(
            local_id=name,
            kind=PackageKind.EDOC,
            state=OutboundState.READY,
            raw=raw,
            facts=PackageFacts(
                document_id=document_id, sender=A, recipients=(B,), priority=priority
            ),
        )
    )
    clock.now += 1.0  # distinct ages
    return added.package.id, raw


def _sink(services: Services) -> RecordingSink:
    assert isinstance(services.sink, RecordingSink)
    return services.sink


def test_sends_the_stored_bytes_unchanged_urgent_first(
    services: Services, store: SqliteStore, hub: HubEmulator, clock: Clock
) -> None:
    created = {p: _ready(store, clock, f"{p}/TEST", p) for p in (0, 1, 3, 2)}
    ordinary_later = _ready(store, clock, "9/TEST", 0)
    assert sender.send_round(services, DependencyBackoff(POLICY)) == 5

    at_hub = hub.packages()
    expected_order = [created[3], created[2], created[1], created[0], ordinary_later]
    assert [p.data for p in at_hub] == [raw for _, raw in expected_order]
    for (package_id, _), stored in zip(expected_order, at_hub, strict=True):
        package = store.get(package_id)
        assert package.state is OutboundState.SENT and package.hub_id == stored.doc_id
        assert package.attempts == 1
        assert [r.state for r in store.recipients(package_id)] == [RecipientState.SENT]
    sent = [e.body for e in _sink(services).events if e.routing_key == "outbound.sent"]
    assert [e["package_id"] for e in sent] == [pid for pid, _ in expected_order]
    assert all(e["attempts"] == 1 and e["recipients"] == [B] for e in sent)


def test_hub_down_waits_without_spending_attempts(
    services: Services, store: SqliteStore, hub: HubEmulator, clock: Clock
) -> None:
    first, _ = _ready(store, clock, "1/TEST")
    second, _ = _ready(store, clock, "2/TEST")
    hub.inject("error", call="sendEdoc", status=503, times=2)  # the first, and the probe
    backoff = DependencyBackoff(POLICY)
    sender.send_round(services, backoff)

    assert backoff.is_down
    waiting = store.get(first)
    assert waiting.state is OutboundState.READY and waiting.attempts == 0
    assert waiting.last_error is not None and waiting.last_error.reason == "hub_busy"
    # Still due, in its place in the urgency order: the hub's back-off decides the next try.
    assert waiting.next_attempt_at <= clock.now
    assert store.events(first)[-1].event == "deferred"
    # The rest of the round was given back, not sent and not leased.
    assert store.get(second).state is OutboundState.READY and store.get(second).lease_owner is None
    assert not hub.packages()
    assert "outbound.retry" not in _sink(services).routing_keys()

    clock.now = max(waiting.next_attempt_at, store.get(second).next_attempt_at)
    sender.send_round(services, backoff)
    assert {store.get(p).state for p in (first, second)} == {OutboundState.SENT}
    assert not backoff.is_down and store.get(first).attempts == 1


def test_lost_answer_is_retried_with_back_off_and_the_same_bytes(
    services: Services, store: SqliteStore, hub: HubEmulator, clock: Clock
) -> None:
    package_id, raw = _ready(store, clock, "1/TEST")
    hub.inject("drop_after", call="sendEdoc")  # the hub stores it, the answer is lost
    sender.send_round(services, DependencyBackoff(POLICY))

    retried = store.get(package_id)
    assert retried.state is OutboundState.READY and retried.attempts == 1
    assert retried.next_attempt_at == pytest.approx(clock.now + 2.0)  # base delay, no jitter
    (event,) = [e.body for e in _sink(services).events if e.routing_key == "outbound.retry"]
    assert event["next_attempt_in"] == 2.0 and event["reason"] == "hub_connection_lost"
    (stored,) = hub.packages()

    assert sender.send_round(services, DependencyBackoff(POLICY)) == 0  # not due yet
    clock.now += 2.0
    sender.send_round(services, DependencyBackoff(POLICY))
    sent = store.get(package_id)
    assert sent.state is OutboundState.SENT and sent.attempts == 2
    assert sent.hub_id == stored.doc_id, "the hub did not recognise the resend"
    assert [p.data for p in hub.packages()] == [raw]


def test_back_off_grows_and_the_attempt_budget_ends_in_failed(
    services: Services, store: SqliteStore, hub: HubEmulator, clock: Clock
) -> None:
    package_id, _ = _ready(store, clock, "1/TEST")
    hub.inject("drop_before", call="sendEdoc", times=3)
    waits = []
    for _ in range(POLICY.max_attempts):
        before = clock.now
        sender.send_round(services, DependencyBackoff(POLICY))
        package = store.get(package_id)
        if package.state is OutboundState.FAILED:
            break
        waits.append(package.next_attempt_at - before)
        clock.now = package.next_attempt_at
    assert waits == [pytest.approx(2.0), pytest.approx(4.0)]
    failed = store.get(package_id)
    assert failed.state is OutboundState.FAILED and failed.attempts == 3
    assert failed.last_error is not None and "gave up after 3 attempts" in failed.last_error.message
    (event,) = [e.body for e in _sink(services).events if e.routing_key == "outbound.failed"]
    assert event["package_id"] == package_id and "gave up" in str(event["message"])
    assert not hub.packages()


def test_answer_later_than_the_read_timeout_is_an_ambiguous_failure(
    hub: HubEmulator, store: SqliteStore, clock: Clock
) -> None:
    client = _client(hub, read=1.0)
    services = _services(store, client, clock)
    try:
        package_id, raw = _ready(store, clock, "1/TEST")
        hub.inject(None, call="sendEdoc", delay_s=3.0)
        sender.send_round(services, DependencyBackoff(POLICY))
        timed_out = store.get(package_id)
        assert timed_out.attempts == 1
        assert timed_out.last_error is not None
        assert timed_out.last_error.reason == "hub_timeout"
        deadline = time.monotonic() + 10
        while not hub.packages() and time.monotonic() < deadline:
            time.sleep(0.05)  # the slow request is still being processed by the hub
        clock.now = timed_out.next_attempt_at
        sender.send_round(services, DependencyBackoff(POLICY))
        assert store.get(package_id).state is OutboundState.SENT
        assert [p.data for p in hub.packages()] == [raw]
    finally:
        client.close()


def test_permanent_refusal_ends_failed_with_the_hubs_reason(
    services: Services, store: SqliteStore, hub: HubEmulator, clock: Clock
) -> None:
    refused, _ = _ready(store, clock, "1/TEST")
    accepted, _ = _ready(store, clock, "2/TEST")
    hub.set_faults(
        refuse=[{"document_id": f"{A},2026/11/20,1/TEST", "description": "không nhận (thử)"}]
    )
    sender.send_round(services, DependencyBackoff(POLICY))
    failed = store.get(refused)
    assert failed.state is OutboundState.FAILED and failed.attempts == 1
    assert failed.last_error is not None and failed.last_error.reason == "hub_refused"
    assert "1099" in failed.last_error.message and "không nhận (thử)" in failed.last_error.message
    (event,) = [e.body for e in _sink(services).events if e.routing_key == "outbound.failed"]
    assert event["package_id"] == refused and event["reason"] == "hub_refused"
    assert store.get(accepted).state is OutboundState.SENT


class _Tamper(httpx.BaseTransport):
    """Changes a signed header after signing, as a proxy or an attacker would."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if "XroadVnpt-messagetype" in request.headers:
            request.headers["XroadVnpt-messagetype"] = "status"
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize("flaw", ["wrong secret", "stale timestamp", "altered signed header"])
def test_hmac_refusal_is_a_configuration_problem_not_a_message_failure(
    flaw: str,
    hub: HubEmulator,
    store: SqliteStore,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if flaw == "stale timestamp":
        real = vxp_wire.format_timestamp
        late = dt.timedelta(hours=1)  # the hub's window is 300 s
        monkeypatch.setattr(
            vxp_wire, "format_timestamp", lambda moment=None: real(dt.datetime.now(VN_TZ) - late)
        )
    client = _client(
        hub,
        secret=Secret(secrets.token_hex(24)) if flaw == "wrong secret" else None,
        transport=_Tamper() if flaw == "altered signed header" else None,
    )
    services = _services(store, client, clock)
    package_id, _ = _ready(store, clock, "1/TEST")
    backoff = DependencyBackoff(POLICY)
    try:
        with caplog.at_level(logging.ERROR, logger="connector.sender"):
            sender.send_round(services, backoff)
    finally:
        client.close()

    assert [(r.call, r.http_status) for r in hub.requests()] == [("sendEdoc", 401)]
    package = store.get(package_id)
    assert package.state is OutboundState.READY and package.attempts == 0
    assert package.last_error is not None and package.last_error.reason == "hub_auth"
    assert store.events(package_id)[-1].event == "deferred"
    assert backoff.is_down
    assert not {"outbound.failed", "outbound.retry"} & set(_sink(services).routing_keys())
    assert "hub refused our configuration (not a message failure)" in caplog.text
    assert not hub.packages()


def test_sender_loop_sends_until_stopped(
    hub: HubEmulator, tmp_path: Path, services: Services
) -> None:
    live = SqliteStore(tmp_path / "live.sqlite", PlaintextCipherForTests())
    looped = Services(**{**services.__dict__, "store": live, "clock": None})
    raw = edoc_bytes(A, (B,), document_id=f"{A},2026/11/20,7/LOOP")
    live.add_outbound(
        NewOutbound(
            local_id="7/LOOP",
            kind=PackageKind.EDOC,
            state=OutboundState.READY,
            raw=raw,
            facts=PackageFacts(document_id=f"{A},2026/11/20,7/LOOP", sender=A, recipients=(B,)),
        )
    )
    stop = threading.Event()
    thread = threading.Thread(target=sender.sender_loop, args=(looped, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not hub.packages() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
        live.close()
    assert not thread.is_alive()
    assert [hashlib.sha256(p.data).digest() for p in hub.packages()] == [
        hashlib.sha256(raw).digest()
    ]
