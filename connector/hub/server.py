"""The hub emulator's HTTP side and its Python API (``HubEmulator``).

A ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, optionally TLS with client certificates)
hands each request to the protocol owning its call name -- ``VxpService`` (VXP, §1) or
``EdocRestService`` (eDoc REST v2, §2) -- and applies injected faults around it: latency
and 5xx answers before anything is processed, connections dropped before processing (the
request is lost) or after processing (the hub committed but the client never hears it).

Bounds, before anything is buffered: a request is authenticated from its headers (HMAC or
token) *before* its body is read -- a refused request is answered and its connection
closed, at most ``_DRAIN_LIMIT`` bytes of its body read and discarded so the client can
see the answer; the body of an accepted one must declare a length within the package
limit (no chunked bodies). Every socket has a timeout (``socket_timeout_seconds``: a
stalled or half-open client is dropped), and at most ``max_connections`` connections are
served at once (more are answered 503 and closed). Faults are injected after
authentication.

The paths are the call names appended to any prefix, so the base URL (or the base URL plus
``/EdocService``) can be a client's ``endpoint`` directly. This module must not contain
routing rules (``routing``) or SQL (``store``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from connector.errors import ConfigurationError
from connector.hub.config import CALLS, REST_CALLS, VXP_CALLS, HubConfig, TlsSettings
from connector.hub.edoc_api import EdocRestService
from connector.hub.faults import Action, FaultInjector
from connector.hub.service import Answer, Api, Refused, VxpService, fail
from connector.hub.store import Delivery, HubStore, StoredPackage

log = logging.getLogger(__name__)

_MULTIPART_OVERHEAD = 64 * 1024
_DRAIN_LIMIT = 1024 * 1024  # body bytes discarded after a refusal, so the client reads it
_BUSY_BODY = b'{"status":"FAIL","ErrorCode":"503","ErrorDesc":"too many connections"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (for tests and the demo's summary)."""

    call: str
    systemid: str  # "" when the request was not authenticated
    http_status: int  # 0 when the connection was dropped
    error_code: str
    fault: str  # "", "error", "drop_before", "drop_after", "latency"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: HubEmulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        self.tls = _tls_context(emulator.config.tls) if emulator.config.tls else None
        self.slots = threading.BoundedSemaphore(emulator.config.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread if a connection slot is free; otherwise 503 and close."""
        if not self.slots.acquire(blocking=False):
            log.warning(
                "hub: %d connections already open; %s refused",
                self.emulator.config.max_connections,
                client_address,
            )
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                if self.tls is None:
                    request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The TLS handshake runs here, in the connection's own thread, not the accept loop.
        try:
            request.settimeout(self.emulator.config.socket_timeout_seconds)
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("hub: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()


def _tls_context(settings: TlsSettings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        if settings.client_ca_file is not None:
            context.load_verify_locations(cafile=str(settings.client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"hub TLS: cannot load {settings.cert_file} / {settings.key_file} / "
            f"{settings.client_ca_file}: {exc}",
            reason="config",
        ) from None
    return context


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers are written in two parts: no 40 ms stalls
    server_version = "edoc-connector-hub/0.1"
    server: _Server

    def setup(self) -> None:
        # Every read and write of this connection times out (idle keep-alive included).
        self.request.settimeout(self.server.emulator.config.socket_timeout_seconds)
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.sockets_lock:
                self.server.open_sockets.discard(self.connection)

    def handle_expect_100(self) -> bool:
        """Invite the body only once the request is authenticated (see ``_serve``)."""
        return True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("hub http: " + format, *args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/").endswith("/healthz"):
            self._send(Answer(200, {"status": "OK"}))
        else:
            self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        emulator = self.server.emulator
        path, _, query = self.path.partition("?")
        call = path.rstrip("/").rsplit("/", 1)[-1]
        api = emulator.api_for(call)
        if api is None or method not in api.methods(call):
            self._drain_or_close()
            answer = fail("404", f"no {method} call {call!r}", 404)
            self._finish(call, "", answer, "")
            return
        try:
            caller = api.authenticate(call, self.headers)
        except Refused as refused:
            self._refuse_unread(call, refused.answer)
            return
        body = self._read_body(api, emulator.config.max_package_bytes + _MULTIPART_OVERHEAD)
        if body is None:
            return
        decision = emulator.faults.decide(call)
        if decision.delay_s > 0:
            time.sleep(decision.delay_s)
        if decision.action == "error":
            answer = api.failure(str(decision.status), "injected fault", decision.status)
            self._finish(call, "", answer, "error")
            return
        if decision.action == "drop_before":
            self._drop(call, "", "drop_before")
            return
        systemid = ""
        try:
            answer, systemid = api.serve(call, caller, self.headers, body, parse_qs(query))
        except Refused as refused:
            answer = refused.answer
        except Exception:
            log.exception("hub: %s failed", call)
            answer = api.failure("500", "internal error of the hub emulator", 500)
        if decision.action == "drop_after":
            self._drop(call, systemid, "drop_after")
            return
        self._finish(call, systemid, answer, "latency" if decision.delay_s else "")

    # -- helpers --------------------------------------------------------------------------

    def _read_body(self, api: Api, limit: int) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send(api.failure("1000", "chunked bodies are not supported", 411))
            return None
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(api.failure("1000", "bad Content-Length", 400))
            return None
        if length > limit:
            self.close_connection = True
            self._send(api.failure("413", f"request larger than {limit} bytes", 413))
            self._drain_or_close()
            return None
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        return self.rfile.read(length)

    def _refuse_unread(self, call: str, answer: Answer) -> None:
        """Answer a refused request without buffering its body, then close."""
        self.close_connection = True
        self._finish(call, "", answer, "")
        self._drain_or_close()

    def _drain_or_close(self) -> None:
        """Discard a small unread body (so keep-alive stays in step); else close.

        A client that sent ``Expect: 100-continue`` was never invited: it sends no body."""
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= _DRAIN_LIMIT:
            self.close_connection = True
            return
        with contextlib.suppress(OSError):
            while length > 0:
                chunk = self.rfile.read(min(length, 64 * 1024))
                if not chunk:
                    break
                length -= len(chunk)

    def _drop(self, call: str, systemid: str, fault: str) -> None:
        """Close the connection without an answer (RST, as a crashed proxy would)."""
        self.server.emulator.record(RequestRecord(call, systemid, 0, "", fault))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _finish(self, call: str, systemid: str, answer: Answer, fault: str) -> None:
        body = answer.body
        code = str(body.get("ErrorCode", body.get("code", ""))) if isinstance(body, dict) else ""
        self.server.emulator.record(RequestRecord(call, systemid, answer.http_status, code, fault))
        self._send(answer)

    def _send(self, answer: Answer) -> None:
        payload = json.dumps(answer.body, ensure_ascii=False).encode("utf-8")
        self.send_response(answer.http_status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


class HubEmulator:
    """An in-process hub: ``start()`` serves in a background thread and returns the base URL.

    Tests change faults at runtime (``set_faults``, ``inject``) and look inside
    (``inbox``, ``deliveries``, ``packages``, ``requests``). ``stop()`` closes every
    connection; a new emulator on the same ``db`` continues where this one stopped.
    """

    def __init__(self, config: HubConfig) -> None:
        self.config = config
        self.faults = FaultInjector(config.faults)
        self.store = HubStore(config.db)
        try:
            self.service = VxpService(config, self.store, self.faults)
            self.rest = EdocRestService(self.service.router, self.service.accounts)
        except BaseException:
            self.store.close()
            raise
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests: deque[RequestRecord] = deque(maxlen=10_000)
        self._requests_lock = threading.Lock()

    def api_for(self, call: str) -> Api | None:
        if call in VXP_CALLS:
            return self.service
        if call in REST_CALLS:
            return self.rest
        return None

    def start(self) -> str:
        if self._server is not None:
            return self.url
        self._server = _Server((self.config.host, self.config.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="hub-emulator",
            daemon=True,
        )
        self._thread.start()
        log.info("hub emulator listening on %s", self.url)
        if self.config.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning(
                "the hub emulator listens on %s, beyond loopback: it is a test hub with "
                "injectable faults; do not expose it to a shared network",
                self.config.host,
            )
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the hub emulator is not started")
        address = self._server.server_address
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1]
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{shown}:{port}"

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            with server.sockets_lock:
                for connection in list(server.open_sockets):
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.close()

    def __enter__(self) -> HubEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> None:
        """Change random fault settings now, e.g. ``set_faults(error_rate=0.2)``."""
        self.faults.update(**changes)

    def inject(
        self,
        action: Action | None,
        *,
        call: str | None = None,
        times: int = 1,
        status: int = 503,
        delay_s: float = 0.0,
    ) -> None:
        """Script the next ``times`` requests (of ``call``, or any): error/drop/delay only."""
        if call is not None and call not in CALLS:
            raise ValueError(f"unknown call {call!r}; one of {', '.join(CALLS)}")
        self.faults.script(action, call=call, times=times, status=status, delay_s=delay_s)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- introspection --------------------------------------------------------------------

    def inbox(self, organ_id: str, message_type: str | None = None) -> list[Delivery]:
        """Deliveries waiting for ``organ_id`` (not yet acknowledged), as it would list them."""
        return self.store.inbox(organ_id, message_type)

    def deliveries(
        self, *, recipient: str | None = None, sender: str | None = None
    ) -> list[Delivery]:
        """Every delivery in every state (pending, done, fail)."""
        return self.store.deliveries(recipient=recipient, sender=sender)

    def packages(self) -> list[StoredPackage]:
        """Every package the hub accepted, with its bytes, oldest first."""
        return self.store.packages()

    def redeliver(self, delivery_id: str) -> str:
        """Deliver the same package to the same recipient again, under a new DocId."""
        return self.store.redeliver(delivery_id)

    def requests(self, call: str | None = None) -> list[RequestRecord]:
        with self._requests_lock:
            return [r for r in self._requests if call is None or r.call == call]

    def record(self, entry: RequestRecord) -> None:
        with self._requests_lock:
            self._requests.append(entry)
