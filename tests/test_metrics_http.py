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
    settings = MetricsSettings(port=0, request_timeout=1.0, connection_deadline=2.0,
                               max_connections=2, max_connections_per_client=2)
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


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a scanner or a killed client does."""
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_reset_connection_leaves_no_traceback(
    metrics: ConnectorMetrics, server: MetricsServer, capfd: pytest.CaptureFixture[str]
) -> None:
    # socketserver's default handle_error prints a traceback to stderr: with
    # --log-format json that is a non-JSON line, and an attacker can write it at will.
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /livez HTTP/1.1\r\n")
        time.sleep(0.05)
        _reset(sock)
    time.sleep(0.3)
    assert get(server.url + "/livez")[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err


def test_one_client_cannot_take_every_slot(metrics: ConnectorMetrics, health: Health) -> None:
    # A client holding every slot would make the container's HEALTHCHECK (/livez) fail and
    # restart a healthy daemon: each client address gets a share of the slots only.
    settings = MetricsSettings(
        port=0, request_timeout=5.0, connection_deadline=5.0, max_connections=8
    )
    with MetricsServer(metrics, settings, health) as running:
        held = []
        try:
            for _ in range(8):  # a slowloris from 127.0.0.1
                sock = socket.create_connection(("127.0.0.1", running.port))
                sock.sendall(b"GET /livez HTTP/1.1\r\n")
                held.append(sock)
            time.sleep(0.2)
            other = socket.create_connection(("127.0.0.1", running.port), timeout=5,
                                             source_address=("127.0.0.2", 0))
            other.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
            answer = other.recv(100)
            other.close()
            assert answer.startswith(b"HTTP/1.0 200")
            assert running.refused_connections >= 1  # the slowloris got its share only
        finally:
            for sock in held:
                sock.close()


def test_refused_connections_are_not_logged_one_by_one(
    metrics: ConnectorMetrics, server: MetricsServer, caplog: pytest.LogCaptureFixture
) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        time.sleep(0.1)
        with caplog.at_level("WARNING", logger="connector.metrics_http"):
            for _ in range(50):
                extra = socket.create_connection(("127.0.0.1", server.port))
                extra.settimeout(5)
                assert extra.recv(1) == b""
                extra.close()
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert server.refused_connections >= 50
        assert 1 <= len(warnings) <= 2  # rate-limited, with the count
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_head_is_answered_without_a_body(server: MetricsServer, path: str) -> None:
    request = urllib.request.Request(server.url + path, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    assert status in (200, 503) and body == b""


def test_readiness_counts_every_certificate_in_use(
    metrics: ConnectorMetrics, health: Health
) -> None:
    # Not only our own seal/signer/encryption: the hub TLS client certificate, the chain and
    # the trust anchors too (from the inventory the gauges read); a peer's expired
    # encryption certificate is named but does not make the whole connector unready.
    from connector.metrics import TrustSnapshot

    all_up(metrics)
    good = NOW + 86400 * 90
    certificates = [("hub_tls_client", "", good), ("trust_anchor", "root.pem", good),
                    ("peer_encryption", "000.00.32.H12", good)]
    metrics.use_trust_source(lambda: TrustSnapshot(tuple(certificates)))
    report = health.ready()
    assert report.ok and report.components["certificates"].detail.startswith("3 valid")
    for role, name in (("hub_tls_client", ""), ("trust_anchor", "root.pem")):
        certificates[:] = [(r, n, NOW - 1 if (r, n) == (role, name) else good)
                           for r, n, _ in certificates]
        report = health.ready()
        assert not report.ok, role
        assert report.components["certificates"] == ComponentState(
            False, f"expired: {f'{role} {name}'.strip()}")
    certificates[:] = [(r, n, NOW - 1 if r == "peer_encryption" else good)
                       for r, n, _ in certificates]
    report = health.ready()
    assert report.ok
    assert "expired, not blocking: peer_encryption 000.00.32.H12" in (
        report.components["certificates"].detail)
    # An old root kept beside a valid one is named, not blocking; all anchors expired block.
    certificates[:] = [(r, n, good) for r, n, _ in certificates]
    certificates.append(("trust_anchor", "old-root.pem", NOW - 1))
    report = health.ready()
    assert report.ok and "not blocking: trust_anchor old-root.pem" in (
        report.components["certificates"].detail)
