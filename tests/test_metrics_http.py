"""The metrics endpoint's probes and bounds: /livez, /readyz (/healthz), timeouts, a limit."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.health import ComponentState, Health, folder_writable
from connector.metrics import ConnectorMetrics
from connector.metrics_http import MetricsServer, MetricsSettings

NOW = 2_000_000_000.0  # 2033-05-18


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def metrics() -> ConnectorMetrics:
    return ConnectorMetrics(version="test", process_metrics=False)


@pytest.fixture
def health(metrics: ConnectorMetrics) -> Health:
    return Health(metrics, required=("store", "broker", "hub", "keys"), clock=lambda: NOW)


@pytest.fixture
def server(metrics: ConnectorMetrics, health: Health) -> Iterator[MetricsServer]:
    settings = MetricsSettings(
        port=0, request_timeout=1.0, connection_deadline=2.0, max_connections=2
    )
    with MetricsServer(metrics, settings, health) as running:
        yield running


def all_up(metrics: ConnectorMetrics) -> None:
    for component in ("store", "broker", "hub", "keys"):
        metrics.set_component_up(component, True)


def test_ready_when_every_component_is_up(metrics: ConnectorMetrics, server: MetricsServer) -> None:
    all_up(metrics)
    status, body = get(server.url + "/readyz")
    assert status == 200
    assert body == {"status": "ok", "components": {
        "broker": {"status": "up"}, "hub": {"status": "up"},
        "keys": {"status": "up"}, "store": {"status": "up"}}}
    assert get(server.url + "/healthz") == (status, body)  # the deprecated alias


@pytest.mark.parametrize("down", ["store", "broker", "hub", "keys"])
def test_any_dependency_down_fails_readiness_never_liveness(
    metrics: ConnectorMetrics, health: Health, server: MetricsServer, down: str
) -> None:
    all_up(metrics)
    health.watch_workers(lambda: {"intake": True, "sender": True, "inbound": True})
    metrics.set_component_up(down, False)
    status, body = get(server.url + "/readyz")
    assert status == 503 and body["status"] == "unavailable"
    assert body["components"][down] == {"status": "down"}  # type: ignore[index]
    status, body = get(server.url + "/livez")
    assert status == 200
    assert body["components"] == {  # type: ignore[comparison-overlap]
        "worker:inbound": {"status": "up"}, "worker:intake": {"status": "up"},
        "worker:sender": {"status": "up"}}


def test_a_component_not_yet_reported_is_unknown_and_not_ready(
    metrics: ConnectorMetrics, server: MetricsServer
) -> None:
    metrics.set_component_up("store", True)
    status, body = get(server.url + "/readyz")
    assert status == 503
    assert body["components"]["hub"] == {"status": "unknown"}  # type: ignore[index]


def test_a_dead_worker_fails_liveness(health: Health, server: MetricsServer) -> None:
    assert get(server.url + "/livez")[0] == 200  # before the supervisor: the process answers
    health.watch_workers(lambda: {"intake": True, "sender": False})
    status, body = get(server.url + "/livez")
    assert status == 503
    assert body["components"]["worker:sender"] == {  # type: ignore[index]
        "status": "down", "detail": "thread has ended"}


def test_certificates_valid_or_expired(metrics: ConnectorMetrics, health: Health) -> None:
    import datetime as dt

    all_up(metrics)
    metrics.set_certificate_expiry("seal", dt.datetime.fromtimestamp(NOW + 86400 * 30, dt.UTC))
    metrics.set_certificate_expiry("tls_client", dt.datetime.fromtimestamp(NOW + 86400, dt.UTC))
    report = health.ready()
    assert report.ok
    assert report.components["certificates"].detail.startswith("2 valid; first to expire: tls_client")
    metrics.set_certificate_expiry("tls_client", dt.datetime.fromtimestamp(NOW - 1, dt.UTC))
    report = health.ready()
    assert not report.ok
    assert report.components["certificates"] == ComponentState(False, "expired: tls_client")


def test_registered_checks_and_a_failing_check(
    metrics: ConnectorMetrics, health: Health, tmp_path: Path
) -> None:
    all_up(metrics)
    health.add_check("spool", folder_writable(tmp_path))
    assert health.ready().ok
    health.add_check("spool", folder_writable(tmp_path / "missing"))
    assert health.ready().components["spool"].up is False

    def broken() -> ComponentState:
        raise RuntimeError("boom")

    health.add_check("spool", broken)
    assert health.ready().components["spool"] == ComponentState(False, "check failed: boom")


def test_half_open_connections_time_out_and_free_their_slot(
    metrics: ConnectorMetrics, server: MetricsServer
) -> None:
    host, port = "127.0.0.1", server.port
    idle = [socket.create_connection((host, port)) for _ in range(2)]  # the limit: 2
    try:
        time.sleep(0.1)
        extra = socket.create_connection((host, port))
        extra.settimeout(5)
        assert extra.recv(1) == b""  # over the limit: closed at once, no thread held
        extra.close()
        for sock in idle:  # the server gives up on silent clients after request_timeout
            sock.settimeout(5)
            assert sock.recv(1024) == b""
    finally:
        for sock in idle:
            sock.close()
    assert server.refused_connections >= 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slots are free again
        try:
            with urllib.request.urlopen(server.url + "/metrics", timeout=2) as response:
                assert response.status == 200
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    else:
        pytest.fail("metrics did not answer after the idle connections timed out")


def test_a_trickling_client_does_not_block_others(
    metrics: ConnectorMetrics, server: MetricsServer
) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port))
    stop = threading.Event()

    def trickle() -> None:
        try:
            slow.sendall(b"GET /metrics HTTP/1.1\r\n")
            while not stop.wait(0.1):
                slow.sendall(b"X")
        except OSError:
            pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
            assert response.status == 200
        slow.settimeout(10)  # the connection deadline (2 s here) ends the trickler
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            while slow.recv(1024):
                pass
        assert time.monotonic() - started < 8
    finally:
        stop.set()
        thread.join(2)
        slow.close()
