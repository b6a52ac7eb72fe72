"""Broker connections for the RabbitMQ local side, and the edge where library errors end.

Opens kombu connections (publisher confirms on, heartbeats, TLS with verification for
``amqps://``), waits for socket activity without busy loops, and translates kombu / py-amqp
/ socket exceptions into ``connector.errors`` kinds. Nothing above this module catches a
library exception. This module must not know about records, queues or threads.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import ssl
from typing import Any

import amqp.exceptions
import kombu.connection
import kombu.exceptions

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    UnavailableError,
)
from connector.local.amqp_settings import AmqpSettings

log = logging.getLogger(__name__)

# kombu's Connection is only partly annotated; the adapter treats it as dynamic.
BrokerConnection = Any
_KombuConnection: Any = kombu.connection.Connection

# Failures after which a new connection may succeed (broker restart, network, timeouts).
RECOVERABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes socket.timeout, ConnectionError
    EOFError,
    amqp.exceptions.RecoverableConnectionError,
    amqp.exceptions.RecoverableChannelError,
    amqp.exceptions.IrrecoverableConnectionError,  # a new connection starts clean
    amqp.exceptions.ChannelError,
    amqp.exceptions.ConnectionError,
    kombu.exceptions.OperationalError,
    kombu.exceptions.ConnectionError,
)


def redacted_url(settings: AmqpSettings) -> str:
    """The broker URL without any password, for messages and logs."""
    conn = _KombuConnection(settings.url)
    try:
        return str(conn.as_uri(include_password=False))
    finally:
        conn.release()


def open_connection(
    settings: AmqpSettings, *, purpose: str, extra_options: dict[str, Any] | None = None
) -> BrokerConnection:
    """A connected kombu connection with publisher confirms; raises a connector error."""
    options: dict[str, Any] = {
        "confirm_publish": True,
        "client_properties": {"connection_name": f"{settings.connection_name} ({purpose})"},
        **(extra_options or {}),
    }
    conn = _KombuConnection(
        settings.url,
        password=settings.password,
        heartbeat=settings.heartbeat,
        connect_timeout=settings.connect_timeout,
        ssl=_ssl_options(settings),
        transport_options=options,
    )
    try:
        # One attempt, no sleeping: the callers run their own jittered back-off.
        conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0,
                               reraise_as_library_errors=False)
    except BaseException as exc:
        close_quietly(conn)
        if isinstance(exc, Exception):
            raise translate(exc, f"connecting to RabbitMQ at {redacted_url(settings)}") from exc
        raise
    return conn


def _ssl_options(settings: AmqpSettings) -> dict[str, Any] | bool:
    if not settings.url.startswith("amqps://"):
        return False
    # Verified TLS: the broker's certificate must chain to the CA bundle (or the system
    # store) and match the host name; kombu fills server_hostname from the URL when None.
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None}
    if settings.tls_ca_file:
        options["ca_certs"] = str(settings.tls_ca_file)
    if settings.tls_cert_file:
        options["certfile"] = str(settings.tls_cert_file)
        if settings.tls_key_file:
            options["keyfile"] = str(settings.tls_key_file)
    return options


def close_quietly(conn: BrokerConnection | None) -> None:
    """Close a connection that may already be broken, without raising."""
    if conn is None:
        return
    try:
        conn.release()
    except Exception:  # the connection is being thrown away; nothing useful to report
        log.debug("error while closing a broker connection", exc_info=True)
        try:
            conn.collect()
        except Exception:
            log.debug("error while collecting a broker connection", exc_info=True)


def wait_readable(conn: BrokerConnection, wake_fd: int | None, timeout: float) -> bool:
    """Wait until the broker socket has data (True) or ``wake_fd``/``timeout`` fired (False)."""
    sock = conn.connection.sock
    transport = conn.connection.transport
    if getattr(transport, "_read_buffer", b""):
        return True  # part of a frame is already buffered
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True  # TLS has decrypted bytes waiting
    watched = [sock] if wake_fd is None else [sock, wake_fd]
    readable, _, _ = select.select(watched, [], [], timeout)
    return sock in readable


def read_available(conn: BrokerConnection, wake_fd: int | None, timeout: float) -> None:
    """Wait up to ``timeout`` for broker frames and dispatch every frame already there.

    Reads frame by frame (``drain_events`` would block on a heartbeat frame, which carries
    no method), so callbacks run in the calling thread and heartbeats count as traffic.
    """
    if not wait_readable(conn, wake_fd, timeout):
        return
    amqp_conn = conn.connection
    while True:
        try:
            amqp_conn.blocking_read(timeout=1.0)
        except TimeoutError:
            return  # a partial frame stays buffered for the next read
        if not wait_readable(conn, None, 0):
            return


def translate(exc: BaseException, doing: str) -> ConnectorError:
    """The connector error for a library exception raised while ``doing`` something."""
    if isinstance(exc, ConnectorError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, amqp.exceptions.AccessRefused):
        return ConfigurationError(
            f"RabbitMQ refused access while {doing}: check user, password, vhost and "
            f"permissions ({detail})",
            reason="broker_access_refused",
        )
    if isinstance(exc, amqp.exceptions.PreconditionFailed):
        return ConfigurationError(
            f"RabbitMQ refused a declaration while {doing}: an existing queue or exchange "
            f"has different arguments; delete it or rename ours ({detail})",
            reason="broker_topology_mismatch",
        )
    if isinstance(exc, amqp.exceptions.NotFound):
        return UnavailableError(
            f"RabbitMQ has no such exchange or queue while {doing} (deleted while running?); "
            f"the topology is declared again on the next attempt ({detail})",
            reason="broker_not_found",
        )
    if isinstance(exc, amqp.exceptions.MessageNacked):
        return UnavailableError(
            f"RabbitMQ did not accept the message while {doing} (negative confirm: queue "
            "full or broker error)",
            reason="broker_nack",
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return UnavailableError(
            f"RabbitMQ did not answer in time while {doing} ({detail})", reason="broker_timeout"
        )
    if isinstance(exc, RECOVERABLE_ERRORS):
        return UnavailableError(
            f"RabbitMQ unavailable while {doing} ({detail})", reason="broker_unavailable"
        )
    return PermanentError(f"unexpected error while {doing} ({detail})", reason="broker_error")


class Backoff:
    """Jittered exponential delays for reconnecting: initial, x2 each time, capped."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._maximum, self._next * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self._initial
