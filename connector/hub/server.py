"""The hub emulator's HTTP side and its Python API (``HubEmulator``).

A ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, optionally TLS with client certificates)
hands each request to the protocol owning its call name -- ``VxpService`` (VXP, §1) or
``EdocRestService`` (eDoc REST v2, §2) -- and applies injected faults around it: latency
and 5xx answers before anything is processed, connections dropped before processing (the
request is lost) or after processing (the hub committed but the client never hears it).

Bounds, before anything is buffered: a request is authenticated from its headers (HMAC
or token) *before* its body is read -- a refused request is answered and its connection
closed, at most ``_DRAIN_LIMIT`` bytes of its body read and discarded so the client can
see the answer, and ``100 Continue`` is granted only after authentication; the body of an
accepted one must declare a length within the package limit (no chunked bodies). Socket
timeouts and the connection limit are ``listener.BoundedServer``'s. Faults are injected
after authentication.

The paths are the call names appended to any prefix, so the base URL (or the base URL plus
``/EdocService``) can be a client's ``endpoint`` directly. This module must not contain
routing rules (``routing``) or SQL (``store``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from connector.hub.config import CALLS, REST_CALLS, VXP_CALLS, HubConfig
from connector.hub.edoc_api import EdocRestService
from connector.hub.faults import Action, FaultInjector
from connector.hub.listener import BoundedServer
from connector.hub.service import Answer, Api, Refused, VxpService, fail
from connector.hub.store import Delivery, HubStore, StoredPackage

log = logging.getLogger(__name__)

_MULTIPART_OVERHEAD = 64 * 1024
_DRAIN_LIMIT = 1024 * 1024  # body bytes discarded after a refusal, so the client reads it
_DRAIN_SECONDS = 1.0  # and for how long at most


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (for tests and the demo's summary)."""

    call: str
    systemid: str  # "" when the request was not authenticated
    http_status: int  # 0 when the connection was dropped
    error_code: str
    fault: str  # "", "error", "drop_before", "drop_after", "latency"


class _Server(BoundedServer):
    def __init__(self, address: tuple[str, int], emulator: HubEmulator) -> None:
        self.emulator = emulator
        config = emulator.config
        super().__init__(
            address,
            _Handler,
            max_connections=config.max_connections,
            socket_timeout=config.socket_timeout_seconds,
            tls=config.tls,
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers are written in two parts: no 40 ms stalls
    server_version = "edoc-connector-hub/0.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

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
            self._drain_briefly()
            return None
        if (self.headers.get("Expect") or "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        return self.rfile.read(length)

    def _refuse_unread(self, call: str, answer: Answer) -> None:
        """Answer a refused request without buffering its body, then close.

        What the client already sent of its body is discarded for a moment (so it can
        read the answer instead of a reset), never longer than ``_DRAIN_SECONDS``."""
        self.close_connection = True
        self._finish(call, "", answer, "")
        self._drain_briefly()

    def _drain_briefly(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.settimeout(min(_DRAIN_SECONDS, self.connection.gettimeout() or 1))
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
            server.close_all()
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
