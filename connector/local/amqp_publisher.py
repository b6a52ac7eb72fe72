"""Confirmed, mandatory publishing to RabbitMQ from any thread.

One connection (separate from the consumer's, so broker flow control on publishers never
holds back acknowledgements) guarded by a lock. Every publish is persistent, ``mandatory``
and waits for the broker's publisher confirm within ``publish_timeout``: ``publish``
returns only when the broker has taken responsibility for the message. A message the
broker returns as unroutable, a negative confirm, a timeout or a lost connection raises a
``connector.errors`` kind; nothing is dropped silently. A small keeper thread services
heartbeats while the connection is idle. This module must not consume.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import amqp
import amqp.exceptions

from connector.errors import ConnectorError, PermanentError, UnavailableError
from connector.local.amqp_connection import (
    RECOVERABLE_ERRORS,
    BrokerConnection,
    close_quietly,
    open_connection,
    read_available,
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

    def to_amqp(self) -> amqp.Message:
        props: dict[str, Any] = dict(self.properties)
        props.update(
            content_type=self.content_type,
            application_headers=dict(self.headers),
            delivery_mode=PERSISTENT,
        )
        if self.message_id is not None:
            props["message_id"] = self.message_id
        if self.priority is not None:
            props["priority"] = self.priority
        return amqp.Message(self.body, **props)


class UnroutableError(UnavailableError):
    """The broker returned a mandatory message: no queue is bound for its routing key."""


class ConfirmingPublisher:
    """Publishes with confirms; thread-safe; reconnects on the next publish after a loss."""

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
        self._returned: list[str] = []
        self._blocked_reason: str | None = None
        self._closed = threading.Event()
        self._keeper: threading.Thread | None = None
        if settings.heartbeat > 0:
            self._keeper = threading.Thread(
                target=self._keep_alive, name=f"amqp-{purpose}-heartbeat", daemon=True
            )
            self._keeper.start()

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
        if self._closed.is_set():
            raise UnavailableError(f"publisher closed while {doing}", reason="broker_closed")
        for attempt in (1, 2):
            reused = self._channel is not None
            try:
                channel = self._ensure_channel()
                self._returned.clear()
                channel.basic_publish(
                    message.to_amqp(),
                    exchange=message.exchange,
                    routing_key=message.routing_key,
                    mandatory=True,
                    timeout=self._settings.publish_timeout,
                    confirm_timeout=self._settings.publish_timeout,
                )
            except ConnectorError:
                self._reset()
                raise
            except amqp.exceptions.PreconditionFailed as exc:
                self._reset()
                raise _refused(exc, doing) from exc
            except RECOVERABLE_ERRORS as exc:
                self._reset()
                err = translate(exc, doing)
                if self._blocked_reason and err.reason == "broker_timeout":
                    err = UnavailableError(
                        f"RabbitMQ is blocking publishers ({self._blocked_reason}) while "
                        f"{doing}",
                        reason="broker_blocked",
                    )
                # Only a connection that went stale since its last use is retried at once;
                # after a timeout or nack the outcome is unknown / refused: the caller decides.
                if not (reused and attempt == 1 and err.reason == "broker_unavailable"):
                    raise err from exc
                log.info("publisher connection was lost; reconnecting once (%s)", err.message)
                continue
            except Exception as exc:  # anything else: the channel state is unknown
                self._reset()
                raise translate(exc, doing) from exc
            if self._returned:
                raise UnroutableError(
                    f"RabbitMQ returned the message while {doing}: no queue is bound to "
                    f"exchange {message.exchange!r} for routing key {message.routing_key!r} "
                    f"({self._returned[0]}); bind a queue to receive it",
                    reason="unroutable",
                )
            return

    def _ensure_channel(self) -> Any:
        if self._channel is not None:
            return self._channel
        conn = open_connection(
            self._settings,
            purpose=self._purpose,
            extra_options={"on_blocked": self._on_blocked, "on_unblocked": self._on_unblocked},
        )
        try:
            channel = conn.channel()
            declare_topology(channel, self._settings.topology)
            channel.events["basic_return"].add(self._on_return)
        except BaseException as exc:
            close_quietly(conn)
            if isinstance(exc, Exception):
                raise translate(exc, "declaring the topology") from exc
            raise
        self._conn, self._channel = conn, channel
        return channel

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
        self._conn, self._channel = None, None

    def _keep_alive(self) -> None:
        interval = max(0.2, self._settings.heartbeat / 4)
        while not self._closed.wait(interval):
            if not self._lock.acquire(blocking=False):
                continue  # a publish is in progress: it services the connection itself
            try:
                if self._conn is not None:
                    read_available(self._conn, None, 0)
                    self._conn.heartbeat_check()
            except RECOVERABLE_ERRORS as exc:
                log.info("idle publisher connection lost (%s); reconnecting on next use", exc)
                self._reset()
            finally:
                self._lock.release()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._reset()
        if self._keeper is not None:
            self._keeper.join(timeout=5)


def _refused(exc: amqp.exceptions.PreconditionFailed, doing: str) -> PermanentError:
    text = str(exc)
    reason = "message_too_large" if "max size" in text else "broker_refused"
    return PermanentError(f"RabbitMQ refused the message while {doing}: {text}", reason=reason)
