"""The connector's small HTTP endpoint: ``/metrics`` for Prometheus and the probes.

Runs a threading HTTP server in a background thread, started and stopped by the daemon.

* ``/metrics``: the connector's own registry (Prometheus text, or OpenMetrics when the
  scraper asks for it).
* ``/livez``: 200 while the process and its workers are alive, whatever the dependencies
  do (the container's liveness probe / HEALTHCHECK).
* ``/readyz``: 200 when the store, the local side, the hub, the keys and the certificates
  are all usable, 503 otherwise; the JSON body names each component's state.
* ``/healthz``: an alias of ``/readyz``, kept for one release (deprecated).

Bounded on purpose: each connection gets ``request_timeout`` seconds per socket operation
and at most ``max_connections`` are served at once (more are closed at once), so half-open
or trickling clients never hold threads forever. One client address gets at most
``max_connections_per_client`` of them, so a single slowloris cannot starve the container's
HEALTHCHECK or Prometheus. Refusals are logged at most once a minute (with their count), and
a client that resets its connection leaves one debug line, never a traceback. Binds to
loopback unless configured otherwise. This module must not record metrics itself (beyond
serving them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from connector.health import Health, Report
from connector.metrics import ConnectorMetrics

log = logging.getLogger(__name__)

PATHS = ("/metrics", "/livez", "/readyz", "/healthz")
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two warnings about refused connections


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464  # 0 picks a free port (tests)
    request_timeout: float = 10.0  # seconds per socket read/write of one connection
    connection_deadline: float = 30.0  # whole life of one connection (tricklers end here)
    max_connections: int = 16  # served at once; more are closed without an answer
    max_connections_per_client: int = 0  # from one address; 0: a quarter of max_connections


class _BoundedServer(ThreadingHTTPServer):
    """A threading server that serves at most ``max_connections`` connections at once, at
    most ``per_client`` of them from one address."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_connections: int, per_client: int = 0) -> None:
        self.max_connections = max(max_connections, 1)
        self.per_client = per_client if per_client > 0 else max(self.max_connections // 4, 1)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._by_client: dict[str, int] = {}
        self._lock = threading.Lock()
        self.refused_connections = 0
        self._refusals_unlogged = 0
        self._refusal_logged_at = float("-inf")
        super().__init__(address, handler)

    def _take(self, client: str) -> bool:
        with self._lock:
            if self._by_client.get(client, 0) >= self.per_client:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._by_client[client] = self._by_client.get(client, 0) + 1
            return True

    def _give_back(self, client: str) -> None:
        with self._lock:
            left = self._by_client.get(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)
            self._slots.release()

    def _refused(self, client: str) -> None:
        # One line per refusal would let anyone flood the log: one a minute, with the count.
        with self._lock:
            self.refused_connections += 1
            self._refusals_unlogged += 1
            now = time.monotonic()
            if now - self._refusal_logged_at < REFUSAL_LOG_INTERVAL:
                return
            count, self._refusals_unlogged = self._refusals_unlogged, 0
            self._refusal_logged_at = now
        log.warning("metrics http: %d connection(s) closed unserved (at most %d at once, %d "
                    "per client; latest from %s)", count, self.max_connections,
                    self.per_client, client)

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0]) if client_address else "?"
        if not self._take(client):
            self._refused(client)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._give_back(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._give_back(str(client_address[0]) if client_address else "?")

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr (a non-JSON line any client can cause).
        error = sys.exc_info()[1]
        log.debug("metrics http: connection from %s ended: %s: %s",
                  client_address[0] if client_address else "?",
                  type(error).__name__, error)


class MetricsServer:
    """Serves one ``ConnectorMetrics`` and its probes over HTTP in a daemon thread."""

    def __init__(
        self,
        metrics: ConnectorMetrics,
        settings: MetricsSettings,
        health: Health | None = None,
    ) -> None:
        self._metrics = metrics
        self._settings = settings
        self.health = health if health is not None else Health(metrics)
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._settings.host}:{self.port}"

    @property
    def refused_connections(self) -> int:
        return self._server.refused_connections if self._server is not None else 0

    def start(self) -> None:
        """Bind and serve; raises OSError when the address is taken."""
        if self._server is not None:
            return
        handler = _handler_for(self._metrics, self.health, self._settings)
        server = _BoundedServer(
            (self._settings.host, self._settings.port), handler, self._settings.max_connections,
            self._settings.max_connections_per_client,
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5},
            name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics (probes /livez, /readyz)",
                 self._settings.host, self.port)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(
    metrics: ConnectorMetrics, health: Health, settings: MetricsSettings
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edoc-connector"
        timeout = settings.request_timeout  # set on the socket by StreamRequestHandler
        _deadline: threading.Timer | None = None
        _head_only = False

        def setup(self) -> None:
            super().setup()
            # A client sending one byte just before each timeout would hold the thread for
            # hours: past the deadline the socket is shut, which ends any read or write.
            self._deadline = threading.Timer(settings.connection_deadline, self._cut)
            self._deadline.daemon = True
            self._deadline.start()

        def _cut(self) -> None:
            log.debug("metrics http: connection from %s past its deadline: closed",
                      self.client_address[0])
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            with contextlib.suppress(OSError):
                super().finish()

        def do_HEAD(self) -> None:  # probes that ask for the status only
            self._head_only = True
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, content_type, encoder(metrics.registry))
            elif path == "/livez":
                self._report(health.live())
            elif path in ("/readyz", "/healthz"):
                self._report(health.ready())
            else:
                self._reply(404, "text/plain; charset=utf-8",
                            f"not found: try {', '.join(PATHS)}\n".encode())

        def _report(self, report: Report) -> None:
            self._reply(report.http_status, "application/json",
                        json.dumps(report.body()).encode())

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if not self._head_only:
                    self.wfile.write(body)
            except (TimeoutError, ConnectionError) as exc:
                log.debug("metrics http: client gone while answering: %s", exc)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
