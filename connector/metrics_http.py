"""The connector's small HTTP endpoint: ``/metrics`` for Prometheus and ``/healthz``.

Runs a threading HTTP server in a background thread, started and stopped by the daemon.
``/metrics`` serves the connector's own registry (Prometheus text, or OpenMetrics when the
scraper asks for it); ``/healthz`` answers 200 when every reported component is up and
503 otherwise, with a small JSON body naming each component's state. Binds to loopback
unless configured otherwise. This module must not record metrics itself.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from connector.metrics import ConnectorMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9464  # 0 picks a free port (tests)


class MetricsServer:
    """Serves one ``ConnectorMetrics`` over HTTP in a daemon thread."""

    def __init__(self, metrics: ConnectorMetrics, settings: MetricsSettings) -> None:
        self._metrics = metrics
        self._settings = settings
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._settings.host}:{self.port}"

    def start(self) -> None:
        """Bind and serve; raises OSError when the address is taken."""
        if self._server is not None:
            return
        handler = _handler_for(self._metrics)
        server = ThreadingHTTPServer((self._settings.host, self._settings.port), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5},
            name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self._settings.host, self.port)

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


def _handler_for(metrics: ConnectorMetrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "edoc-connector"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, content_type, encoder(metrics.registry))
            elif path == "/healthz":
                components = metrics.components()
                healthy = all(components.values())
                body = {
                    "status": "ok" if healthy else "unavailable",
                    "components": {k: "up" if v else "down" for k, v in sorted(components.items())},
                }
                self._reply(200 if healthy else 503, "application/json",
                            json.dumps(body).encode())
            else:
                self._reply(404, "text/plain; charset=utf-8",
                            b"not found: try /metrics or /healthz\n")

        def _reply(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
