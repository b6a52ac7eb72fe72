"""Answers read as the SDK reads them, errors that name their cause, answers bounded.

* ``ErrorCode`` decides, with ``status`` when present; a JSON error body under a non-2xx
  status gives the hub's words before the typed error is raised;
* a failure to get an answer says why in words: DNS, refused, TLS, which timeout;
* an answer larger than ``max_answer_bytes`` is cut off while it streams in (a declared
  length beyond the bound is refused before any byte is read), and a 240 MB ``getEdoc``
  answer leaves the process far below its size in memory.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from collections.abc import Callable, Iterator

import httpx
import pytest

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.interconnect import Secret, VxpClient, VxpSettings

SECRET = Secret("answers-test-secret")
_DOC = base64.b64encode(b"<edXML/>").decode()


def _client(handler: Callable[[httpx.Request], httpx.Response], **settings: object) -> VxpClient:
    values: dict[str, object] = {
        "endpoint": "https://hub.example.gov.vn/vxp",
        "systemid": "vxp.test",
        "secret": SECRET,
        **settings,
    }
    return VxpClient(VxpSettings(**values), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "succeeds"),
    [
        ({"status": "OK", "ErrorCode": "0"}, True),
        ({"ErrorCode": "0"}, True),  # no status: ErrorCode decides
        ({"ErrorCode": 0}, True),  # a number, as some hubs write it
        ({"status": "ok", "ErrorCode": "0"}, True),
        ({"status": "OK"}, True),  # status alone
        ({"status": "OK", "ErrorCode": "7"}, False),
        ({"status": "FAIL", "ErrorCode": "0"}, False),  # status present and not OK
        ({"ErrorCode": "1404", "ErrorDesc": "không có văn bản"}, False),
    ],
)
def test_error_code_decides_with_status_when_present(
    answer: dict[str, object], succeeds: bool
) -> None:
    with _client(lambda r: httpx.Response(200, json={**answer, "data": _DOC})) as client:
        if succeeds:
            assert client.fetch("1") == b"<edXML/>"
        else:
            with pytest.raises(PermanentError) as caught:
                client.fetch("1")
            assert caught.value.reason == "hub_refused"
            assert f"ErrorCode {answer['ErrorCode']}" in str(caught.value)


def test_an_answer_with_neither_field_leaves_the_outcome_unknown() -> None:
    with (
        _client(lambda r: httpx.Response(200, json={"data": _DOC})) as client,
        pytest.raises(TransientError, match="neither ErrorCode nor status"),
    ):
        client.fetch("1")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentError),
        (401, ConfigurationError),
        (403, ConfigurationError),
        (404, PermanentError),
        (500, UnavailableError),
        (503, UnavailableError),
    ],
)
def test_a_json_error_body_under_a_non_200_status_is_read(
    status: int, kind: type[ConnectorError]
) -> None:
    body = {"status": "FAIL", "ErrorCode": "1234", "ErrorDesc": "Sai định dạng gói tin"}
    with (
        _client(lambda r: httpx.Response(status, json=body)) as client,
        pytest.raises(kind) as caught,
    ):
        client.pending("edoc")
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert "ErrorCode 1234: Sai định dạng gói tin" in message


def test_a_non_json_error_body_gives_the_reason_phrase() -> None:
    with (
        _client(lambda r: httpx.Response(502, text="<html>bad gateway</html>")) as client,
        pytest.raises(UnavailableError, match="HTTP 502: Bad Gateway"),
    ):
        client.directory()


# -- causes, in words ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _real_client(endpoint: str, **settings: object) -> VxpClient:
    values: dict[str, object] = {"systemid": "s", "secret": SECRET, "connect_timeout": 2.0}
    values.update(settings)
    return VxpClient(VxpSettings(endpoint=endpoint, **values))  # type: ignore[arg-type]


def test_connection_refused_is_named() -> None:
    with (
        _real_client(f"http://127.0.0.1:{_free_port()}") as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.pending("edoc")
    assert "connection refused" in str(caught.value)
    assert caught.value.reason == "hub_unreachable"


def test_dns_failure_is_named() -> None:
    with (
        _real_client("https://hub.connector-test.invalid/vxp") as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.pending("edoc")
    assert "DNS lookup failed" in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_read_timeout_is_named_with_its_limit(silent_server: int) -> None:
    with (
        _real_client(f"http://127.0.0.1:{silent_server}", read_timeout=0.3) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.pending("edoc")
    assert "read timeout: no answer within 0.3 s" in str(caught.value)
    assert caught.value.reason == "hub_timeout"


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (
            httpx.ConnectError("[Errno -2] Name or service not known"),
            UnavailableError,
            "DNS lookup failed",
        ),
        (httpx.ConnectError("[Errno 111] Connection refused"), UnavailableError, "refused"),
        (httpx.ConnectTimeout("timed out"), UnavailableError, "connect timeout"),
        (httpx.PoolTimeout("timed out"), UnavailableError, "no free connection"),
        (httpx.WriteTimeout("timed out"), TransientError, "write timeout"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), TransientError, "reset"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            TransientError,
            "closed the connection",
        ),
    ],
)
def test_every_transport_failure_says_why(
    error: Exception, kind: type[ConnectorError], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with _client(handler) as client, pytest.raises(kind) as caught:
        client.pending("edoc")
    assert words in str(caught.value)


def test_a_wrapped_socket_error_is_found_in_the_chain() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        except OSError as exc:
            raise httpx.ConnectError("connect failed") from exc

    with _client(handler) as client, pytest.raises(UnavailableError) as caught:
        client.pending("edoc")
    assert "DNS lookup failed: Temporary failure in name resolution" in str(caught.value)


# -- answers bounded while they stream in --------------------------------------------------


class _Endless(httpx.SyncByteStream):
    """``total`` bytes of a getEdoc answer, made lazily; counts what was consumed."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.consumed = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"status":"OK","ErrorCode":"0","data":"'
        while self.consumed < self.total:
            self.consumed += self.chunk
            yield b"A" * self.chunk
        yield b'"}'


@pytest.mark.parametrize("declared", [False, True])
def test_an_oversized_answer_is_cut_off_while_streaming(declared: bool) -> None:
    limit = 1024 * 1024
    stream = _Endless(240 * 1024 * 1024)
    headers = {"Content-Length": str(240 * 1024 * 1024 + 43)} if declared else {}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=stream)

    tracemalloc.start()
    try:
        with (
            _client(handler, max_answer_bytes=limit) as client,
            pytest.raises(PermanentError) as caught,
        ):
            client.fetch("big")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "hub_answer_too_large"
    assert "max_answer_bytes" in str(caught.value)
    assert stream.consumed <= (0 if declared else limit + stream.chunk)
    assert peak < 4 * limit


def test_an_answer_within_the_bound_is_read_whole() -> None:
    stream = _Endless(512 * 1024)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    with _client(handler, max_answer_bytes=1024 * 1024) as client:
        assert len(client.fetch("fits")) == 512 * 1024 * 3 // 4


_CHILD = textwrap.dedent(
    """
    import socket, sys, threading

    def peak_kb():
        # VmHWM, reset below: ru_maxrss would carry the parent's peak across fork and exec
        # (a large test runner made the child look 400 MB big before it read anything).
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))

    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from connector.errors import PermanentError
    from connector.interconnect import Secret, VxpClient, VxpSettings

    TOTAL = 240 * 1024 * 1024

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"A" * (1024 * 1024)
            try:
                self.wfile.write(b'{"status":"OK","ErrorCode":"0","data":"')
                for _ in range(TOTAL // len(chunk)):
                    self.wfile.write(chunk)
                self.wfile.write(b'"}')
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = VxpSettings(
        endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        systemid="s",
        secret=Secret("x"),
    )
    before = peak_kb()
    with VxpClient(settings) as client:
        try:
            client.fetch("huge")
            print("read", flush=True)
        except PermanentError as exc:
            print(exc.reason, flush=True)
    after = peak_kb()
    print(before // 1024, after // 1024, flush=True)
    server.shutdown()
    """
)


def test_a_240_mb_get_edoc_answer_stays_far_below_its_size_in_memory() -> None:
    """Default bound (96 MiB): the process grows by about the bound, not by 240 MB+."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=True
    )
    outcome, sizes = done.stdout.split("\n")[:2]
    before_mb, after_mb = (int(v) for v in sizes.split())
    assert outcome == "hub_answer_too_large"
    assert after_mb - before_mb < 96 + 48, (before_mb, after_mb)
    assert after_mb < 400
