"""The emulator's listening socket: a threaded HTTP server with bounds and optional TLS.

``BoundedServer`` serves each connection in its own thread, at most ``max_connections`` at
once (one more is answered 503 and closed at once, from the accept loop, without a
thread), gives every accepted socket a timeout (``socket_timeout``: a stalled, slow or
half-open client is dropped, its slot freed), runs TLS handshakes in the connection's
thread (never in the accept loop), and keeps the open sockets so that ``stop`` can close
them. This module must not know the protocols or the emulator.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connector.errors import ConfigurationError
from connector.hub.config import TlsSettings

log = logging.getLogger(__name__)

_BUSY_BODY = b'{"status":"FAIL","ErrorCode":"503","ErrorDesc":"too many connections"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        socket_timeout: float,
        tls: TlsSettings | None,
    ) -> None:
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        self.tls = tls_context(tls) if tls else None
        self.max_connections = max_connections
        self.socket_timeout = socket_timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread if a connection slot is free; otherwise 503 and close."""
        if not self.slots.acquire(blocking=False):
            log.warning(
                "hub: %d connections already open; %s refused",
                self.max_connections,
                client_address,
            )
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                if self.tls is None:
                    request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            request.settimeout(self.socket_timeout)
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
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("hub: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()

    def track(self, connection: socket.socket) -> None:
        with self.sockets_lock:
            self.open_sockets.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(connection)

    def close_all(self) -> None:
        """Shut every open connection down (after ``shutdown``, at stop)."""
        with self.sockets_lock:
            for connection in list(self.open_sockets):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


def tls_context(settings: TlsSettings) -> ssl.SSLContext:
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
