"""Confirmed, mandatory publishing to RabbitMQ from any thread, on kombu's ``Producer``.

One connection (separate from the consumer's, so broker flow control on publishers never
holds back acknowledgements) guarded by a lock. Every publish is persistent, ``mandatory``
(unroutable messages come back through ``on_return``) and waits for the broker's publisher
confirm (the ``confirm_publish`` transport option) within ``publish_timeout``. kombu's
``Producer.publish(retry=True, retry_policy=…)`` reconnects once when the connection went
stale and declares the topology again on the new channel. ``publish`` returns only when
the broker has taken responsibility for the message; a returned message, a negative
confirm, a timeout or a lost broker raises a ``connector.errors`` kind. The connection has
no AMQP heartbeats (it is idle between publishes: TCP keepalive and the retry find a dead
link). This module must not consume.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import amqp.exceptions

from connector.errors import ConnectorError, PermanentError, UnavailableError
from connector.local.amqp_connection import (
    BrokerConnection,
    close_quietly,
    open_connection,
    translate,
)
from connector.local.amqp_settings import AmqpSettings
from connector.local.amqp_topology import declare_topology

log = logging.getLogger(__name__)

PERSISTENT = 2


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to publish; ``properties`` are extra AMQP basic properties."""

    exchange: str  # "" = the default exchange (routing key = queue name)
    routing_key: str
    body: bytes = field(repr=False)
    content_type: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    priority: int | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


class UnroutableError(UnavailableError):
    """The broker returned a mandatory message: no queue is bound for its routing key."""


class ConfirmingPublisher:
    """Publishes with confirms; thread-safe; kombu reconnects after a loss."""

    def __init__(
        self,
        settings: AmqpSettings,
        *,
        purpose: str = "publisher",
        on_failure: Callable[[ConnectorError], None] | None = None,
    ) -> None:
        self._settings = settings
        self._purpose = purpose
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._conn: BrokerConnection | None = None
        self._channel: Any = None
        self._producer: Any = None
        self._returned: list[str] = []
        self._blocked_reason: str | None = None
        self._closed = False
        # One reconnection at once (a stale idle link); then the caller's retry decides.
        self._retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0,
                              "interval_max": 0, "on_revive": self._revived}

    def publish(self, message: OutgoingMessage, *, doing: str) -> None:
        """Publish and wait for the confirm; raises UnavailableError / PermanentError."""
        try:
            with self._lock:
                self._publish_locked(message, doing)
        except ConnectorError as err:
            if self._on_failure is not None:
                self._on_failure(err)
            raise

    def _publish_locked(self, message: OutgoingMessage, doing: str) -> None:
        if self._closed:
            raise UnavailableError(f"publisher closed while {doing}", reason="broker_closed")
        try:
            producer = self._ensure_producer()
            self._returned.clear()
            producer.publish(
                message.body,
                exchange=message.exchange,
                routing_key=message.routing_key,
                content_type=message.content_type,
                content_encoding=message.properties.get("content_encoding"),
                headers=dict(message.headers),
                delivery_mode=PERSISTENT,
                priority=message.priority or 0,
                mandatory=True,
                retry=True,
                retry_policy=self._retry_policy,
                timeout=self._settings.publish_timeout,
                confirm_timeout=self._settings.publish_timeout,
                **_properties(message),
            )
        except ConnectorError:
            self._reset()
            raise
        except amqp.exceptions.PreconditionFailed as exc:
            self._reset()
            raise _refused(exc, doing) from exc
        except Exception as exc:  # the channel state is unknown: start clean next time
            self._reset()
            err = translate(exc, doing)
            if self._blocked_reason and err.reason == "broker_timeout":
                err = UnavailableError(
                    f"RabbitMQ is blocking publishers ({self._blocked_reason}) while {doing}",
                    reason="broker_blocked")
            raise err from exc
        if self._returned:
            raise UnroutableError(
                f"RabbitMQ returned the message while {doing}: no queue is bound to "
                f"exchange {message.exchange!r} for routing key {message.routing_key!r} "
                f"({self._returned[0]}); bind a queue to receive it",
                reason="unroutable",
            )

    def _ensure_producer(self) -> Any:
        if self._producer is not None:
            return self._producer
        conn = open_connection(
            self._settings,
            purpose=self._purpose,
            heartbeat=0.0,
            extra_options={"on_blocked": self._on_blocked, "on_unblocked": self._on_unblocked},
        )
        try:
            channel = conn.default_channel
            declare_topology(channel, self._settings.topology)
            producer = conn.Producer(channel, on_return=self._on_return)
        except BaseException as exc:
            close_quietly(conn)
            if isinstance(exc, Exception):
                raise translate(exc, "declaring the topology") from exc
            raise
        self._conn, self._channel, self._producer = conn, channel, producer
        return producer

    def _revived(self, channel: Any) -> None:
        log.info("publisher connection was lost; reconnected once")
        self._channel = channel
        declare_topology(channel, self._settings.topology)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(str(exc))

    def _on_blocked(self, reason: str) -> None:
        self._blocked_reason = reason or "resource alarm"
        log.warning("RabbitMQ blocks publishing: %s", self._blocked_reason)

    def _on_unblocked(self) -> None:
        self._blocked_reason = None
        log.info("RabbitMQ accepts publishing again")

    def _reset(self) -> None:
        close_quietly(self._conn)
        self._conn, self._channel, self._producer = None, None, None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._reset()


def _properties(message: OutgoingMessage) -> dict[str, Any]:
    """Basic properties kombu takes as keywords (content_encoding is passed on its own)."""
    extra = {k: v for k, v in message.properties.items() if k != "content_encoding"}
    if message.message_id is not None:
        extra["message_id"] = message.message_id
    return extra


def _refused(exc: amqp.exceptions.PreconditionFailed, doing: str) -> PermanentError:
    text = str(exc)
    reason = "message_too_large" if "max size" in text else "broker_refused"
    return PermanentError(f"RabbitMQ refused the message while {doing}: {text}", reason=reason)
