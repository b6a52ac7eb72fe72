"""Broker connections for the RabbitMQ local side, and the edge where library errors end.

Opens kombu connections (publisher confirms on, heartbeats, TLS with verification for
``amqps://``) and translates kombu / py-amqp / socket exceptions into ``connector.errors``
kinds. Nothing above this module catches a library exception. This module must not know
about records, queues or threads.
"""

from __future__ import annotations

import logging
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


def broker_connection(settings: AmqpSettings, *, purpose: str,
                      extra_options: dict[str, Any] | None = None,
                      heartbeat: float | None = None) -> BrokerConnection:
    """A kombu connection (not yet connected) with publisher confirms, heartbeats and TLS.

    ``heartbeat`` overrides the setting (0: none, for a connection nobody services idle)."""
    options: dict[str, Any] = {
        "confirm_publish": True,
        "client_properties": {"connection_name": f"{settings.connection_name} ({purpose})"},
        **(extra_options or {}),
    }
    return _KombuConnection(
        settings.url,
        password=settings.password,
        heartbeat=settings.heartbeat if heartbeat is None else heartbeat,
        connect_timeout=settings.connect_timeout,
        ssl=_ssl_options(settings),
        transport_options=options,
    )


def open_connection(settings: AmqpSettings, *, purpose: str,
                    extra_options: dict[str, Any] | None = None,
                    heartbeat: float | None = None) -> BrokerConnection:
    """A connected kombu connection (one attempt, no sleeping); raises a connector error."""
    conn = broker_connection(settings, purpose=purpose, extra_options=extra_options,
                             heartbeat=heartbeat)
    try:
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


def translate(exc: BaseException, doing: str) -> ConnectorError:
    """The connector error for a library exception raised while ``doing`` something."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, kombu.exceptions.OperationalError) and exc.__cause__ is not None:
        exc = exc.__cause__  # kombu's retry wraps the library error it gave up on
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
