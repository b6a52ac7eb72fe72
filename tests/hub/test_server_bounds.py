"""The emulator's bounds: authentication before any body is read, bounded bodies, socket
timeouts, and a connection limit -- driven over raw sockets, as a hostile client would."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.hub import HubEmulator
from connector.interconnect import vxp_wire as w
from tests.hub.harness import SECRETS, SYSTEMS, A, client_for, hub_config


def _connect(hub: HubEmulator, timeout: float = 5.0) -> socket.socket:
    host, port = hub.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def _head(call: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST /{call} HTTP/1.1", "Host: hub", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _read_answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def _signed(call: str, params: list[tuple[str, str]], content_type: str) -> dict[str, str]:
    systemid = SYSTEMS[A]
    return w.sign(params, systemid=systemid, secret=SECRETS[systemid], content_type=content_type)


_SEND_PARAMS = [("from", A), ("servicetype", "eDoc"), ("messagetype", "edoc"), ("hash-file", "0")]


def _hub(tmp_path: Path, socket_timeout: float) -> HubEmulator:
    config = hub_config(
        tmp_path / "hub.sqlite",
        max_package_bytes=64 * 1024,
        max_connections=2,
        socket_timeout_seconds=socket_timeout,
    )
    return HubEmulator(config)


@pytest.fixture
def small_hub(tmp_path: Path) -> Iterator[HubEmulator]:
    """Short socket timeout: for the tests that wait for it."""
    with _hub(tmp_path, 0.5) as hub:
        yield hub


@pytest.fixture
def patient_hub(tmp_path: Path) -> Iterator[HubEmulator]:
    """Long socket timeout: an answer before it proves nobody waited for a body."""
    with _hub(tmp_path, 5.0) as hub:
        yield hub


@pytest.mark.parametrize(
    ("call", "credentials"),
    [
        ("sendEdoc", {}),  # unsigned
        ("sendEdoc", {"XroadVnpt-hash-header": "0" * 64}),  # signed wrong
        ("sendDocument", {"organid": A, "authorization": "not-the-token", "type": "EDOC"}),
    ],
)
def test_an_unauthenticated_body_is_never_awaited(
    patient_hub: HubEmulator, call: str, credentials: dict[str, str]
) -> None:
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(60 * 1024)}
    if call == "sendEdoc" and credentials:
        headers.update(_signed(call, _SEND_PARAMS, "application/octet-stream"))
    headers.update(credentials)
    with _connect(patient_hub) as connection:
        connection.sendall(_head(call, headers))  # the body never follows
        started = time.monotonic()
        first = connection.recv(65536)
        waited = time.monotonic() - started
        answer = first + _read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"Connection: close" in answer
    assert waited < 4  # answered before the 5 s socket timeout: no body was awaited


def test_expect_100_continue_is_not_granted_before_authentication(
    small_hub: HubEmulator,
) -> None:
    headers = {"Content-Length": "1000", "Expect": "100-continue"}
    with _connect(small_hub) as connection:
        connection.sendall(_head("getEdoc", headers))
        answer = _read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 401") and b"100 Continue" not in answer


def test_expect_100_continue_is_granted_once_authenticated(small_hub: HubEmulator) -> None:
    headers = {
        "Content-Type": "application/json",
        "Content-Length": "2",
        "Expect": "100-continue",
        "Connection": "close",
        **_signed("getEdoc", [("docId", "nothing")], "application/json"),
    }
    with _connect(small_hub) as connection:
        connection.sendall(_head("getEdoc", headers))
        interim = connection.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(b"{}")
        answer = interim + _read_answer(connection)
    assert b"HTTP/1.1 200" in answer and b'"ErrorCode": "1404"' in answer


def test_an_oversized_declared_body_is_refused_unread(small_hub: HubEmulator) -> None:
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(500 * 1024 * 1024),
        **_signed("sendEdoc", _SEND_PARAMS, "application/octet-stream"),
    }
    with _connect(small_hub) as connection:
        connection.sendall(_head("sendEdoc", headers))
        answer = _read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 413")


def test_chunked_bodies_are_refused(small_hub: HubEmulator) -> None:
    headers = {
        "Transfer-Encoding": "chunked",
        **_signed("sendEdoc", _SEND_PARAMS, "application/octet-stream"),
    }
    with _connect(small_hub) as connection:
        connection.sendall(_head("sendEdoc", headers))
        answer = _read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 411")


def test_a_stalled_client_is_dropped_after_the_socket_timeout(small_hub: HubEmulator) -> None:
    with _connect(small_hub) as connection:
        connection.sendall(b"POST /getAgenciesList HTTP/1.1\r\nHost: hub\r\n")  # never ends
        started = time.monotonic()
        assert _read_answer(connection) == b""  # closed by the server
        assert 0.3 < time.monotonic() - started < 5


def test_connections_beyond_the_limit_get_503_and_slots_come_back(
    small_hub: HubEmulator,
) -> None:
    idle = [_connect(small_hub), _connect(small_hub)]  # both slots held, nothing sent
    try:
        time.sleep(0.1)
        with _connect(small_hub) as third:
            answer = _read_answer(third)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
    finally:
        for connection in idle:
            connection.close()
    deadline = time.monotonic() + 5
    while True:  # the slots are released as the server notices the closed connections
        with client_for(small_hub.url, A) as client:
            try:
                assert client.directory()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_half_open_connections_free_their_slots_by_timeout(small_hub: HubEmulator) -> None:
    held = [_connect(small_hub), _connect(small_hub)]  # never closed by the client
    try:
        time.sleep(0.8)  # beyond socket_timeout_seconds: the server drops both
        with client_for(small_hub.url, A) as client:
            assert client.directory()
    finally:
        for connection in held:
            connection.close()
