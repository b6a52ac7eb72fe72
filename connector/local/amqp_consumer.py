"""The consumer thread: owns the consuming connection, its heartbeats and every ack.

kombu/py-amqp channels are not thread-safe, and a connection whose heartbeats go
unanswered is closed by the broker, so one thread owns the consuming connection: it runs
kombu's ``Connection.drain_events`` in short slices, answers heartbeats
(``heartbeat_check``) and between slices applies the acks and requeues other threads
hand it, while the daemon does its CPU-heavy work elsewhere. Deliveries wait in a buffer
bounded by the prefetch count, urgent first. kombu's ``ensure_connection`` does the
(re)connecting with growing intervals; the topology is declared again on every connection
and the broker redelivers everything unacknowledged.

Messages are taken with ``basic_consume`` on kombu's channel rather than ``kombu.Consumer``:
kombu's ``Message`` decompresses a body whose headers name a ``compression``, unbounded,
before any callback sees it; a record must reach the adapter's size checks as published.

A redelivery this process cannot explain (``amqp_redelivery``) is flagged ``suspect``: it
was in flight when a connector died, and the adapter counts that crash against it. This
module must not publish.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from connector.errors import ConnectorError, UnavailableError
from connector.local.amqp_connection import (
    RECOVERABLE_ERRORS,
    BrokerConnection,
    broker_connection,
    close_quietly,
    redacted_url,
    translate,
)
from connector.local.amqp_redelivery import RedeliveryExcuses
from connector.local.amqp_settings import H_RECORD_ID, AmqpSettings
from connector.local.amqp_topology import declare_topology

log = logging.getLogger(__name__)

MAIN, QUARANTINE = "main", "quarantine"
# How long one drain_events call may block (it returns at once when a frame arrives): the
# longest a settlement handed over by another thread waits while no broker traffic wakes
# the consumer thread. Short while records are held (their acks are coming), longer when
# idle (only heartbeats, a stop or a cancel to notice).
BUSY_SLICE = 0.01
IDLE_SLICE = 0.25


@dataclass(eq=False)
class Delivery:
    """One message received on the consuming connection, as plain data."""

    generation: int  # which connection it arrived on; acks on a later one are void
    channel: str  # MAIN or QUARANTINE
    delivery_tag: int
    queue: str
    body: bytes = field(repr=False)
    properties: dict[str, Any]
    redelivered: bool
    suspect: bool = False  # redelivered while no connection loss of ours explains it

    @property
    def headers(self) -> dict[str, Any]:
        headers = self.properties.get("application_headers") or {}
        return dict(headers)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identity across redeliveries and re-publishing (computed only when needed)."""
        return _fingerprint(self.properties, self.body)

    @property
    def priority(self) -> int:
        value = self.properties.get("priority")
        return value if isinstance(value, int) else 0


class _Stopping(Exception):
    """Raised into kombu's reconnection loop when the consumer is stopped."""


class IntakeConsumer:
    """Consumes the intake queues in a thread; other threads take deliveries and settle them."""

    def __init__(
        self,
        settings: AmqpSettings,
        *,
        on_connected: Callable[[], None] = lambda: None,
        on_lost: Callable[[ConnectorError, bool], None] = lambda err, was_connected: None,
    ) -> None:
        self._settings = settings
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._cond = threading.Condition()
        self._ready: list[tuple[int, int, Delivery]] = []  # heap: (-priority, arrival, item)
        self._arrivals = itertools.count()
        self._generation = 0
        self._connected = False
        self._last_error: ConnectorError | None = None
        # (generation, channel, tag) -> every delivery not yet settled
        self._unsettled: dict[tuple[int, str, int], Delivery] = {}
        self._excuses = RedeliveryExcuses()
        # (action, delivery or None, event set once applied or None), applied in order
        self._ops: collections.deque[
            tuple[str, Delivery | None, threading.Event | None]] = collections.deque()
        self._consuming = True
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amqp-consumer", daemon=True)
        self.current_connection: BrokerConnection | None = None  # for diagnostics and tests

    # ---- called from other threads ------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wait_connected(self, timeout: float) -> ConnectorError | None:
        """Wait for the first connection attempt; None when connected, else its error."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._connected and self._last_error is None and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._connected:
                return None
            return self._last_error or UnavailableError(
                "RabbitMQ not reachable yet", reason="broker_unavailable"
            )

    @property
    def connected(self) -> bool:
        return self._connected

    def take(self, max_items: int, timeout: float) -> list[Delivery]:
        """Up to ``max_items`` deliveries, urgent first; raises UnavailableError when the
        broker stayed unreachable for the whole ``timeout`` and nothing is buffered."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._ready:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not self._connected and self._last_error is not None:
                        raise self._last_error
                    return []
                self._cond.wait(remaining)
            taken: list[Delivery] = []
            while self._ready and len(taken) < max_items:
                taken.append(heapq.heappop(self._ready)[2])
            return taken

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge; returns once the consumer thread has written the ack (or the
        connection it arrived on is gone, which makes the ack void)."""
        if not self.is_current(delivery):
            self._submit("ack", delivery)  # void; applied (skipped) for the bookkeeping
            return
        done = threading.Event()
        self._submit("ack", delivery, done)
        done.wait(self._settings.publish_timeout)

    def requeue(self, delivery: Delivery) -> None:
        self._submit("requeue", delivery)

    def is_current(self, delivery: Delivery) -> bool:
        """False once the connection it arrived on is gone (the broker redelivers it)."""
        return self._connected and delivery.generation == self._generation

    def cancel(self, timeout: float) -> list[Delivery]:
        """Stop consuming; return (and forget) every delivery still buffered."""
        with self._cond:
            self._consuming = False  # a session starting now does not subscribe
            connected = self._connected
        if connected:
            self._submit("cancel")
            self._cancelled.wait(timeout)
        with self._cond:
            self._consuming = False
            taken = [entry[2] for entry in sorted(self._ready)]
            self._ready.clear()
            return taken

    def flush(self, timeout: float) -> None:
        """Wait until the settlements submitted so far are applied (or the link is gone)."""
        if not self._connected:
            return  # settlements of a lost connection are void anyway
        done = threading.Event()
        self._submit("flush", None, done)
        done.wait(timeout)

    def stop(self, timeout: float) -> None:
        """Apply pending settlements, close the connection, end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the AMQP consumer thread did not stop within %.0fs", timeout)

    def _submit(self, action: str, delivery: Delivery | None = None,
                done: threading.Event | None = None) -> None:
        with self._cond:
            self._ops.append((action, delivery, done))

    # ---- the consumer thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                conn = None
                try:
                    conn = self._connect()
                    self._session(conn)
                    return
                except _Stopping:
                    return
                except ConnectorError as err:
                    self._lose(err)
                except RECOVERABLE_ERRORS as exc:
                    self._lose(translate(exc, "consuming the intake queues"))
                except Exception as exc:  # a bug must not end consumption for good
                    log.exception("unexpected error in the AMQP consumer thread")
                    self._lose(translate(exc, "consuming the intake queues"))
                finally:
                    self.current_connection = None
                    close_quietly(conn)
                settings = self._settings
                # A refused login or declaration is not fixed by hammering the broker.
                lost = self._last_error
                self._stop.wait(settings.reconnect_max_delay if lost is not None
                                and lost.kind == "configuration"
                                else settings.reconnect_initial_delay)
        finally:
            self._release_waiters()

    def _connect(self) -> BrokerConnection:
        """A connected connection: kombu retries an unreachable broker with growing
        intervals, reporting each failure; other errors (a refused login) are raised."""
        settings = self._settings
        conn = broker_connection(settings, purpose="consumer")
        doing = f"connecting to RabbitMQ at {redacted_url(settings)}"

        def failed(exc: Exception, interval: float) -> None:
            self._lose(translate(exc, doing))

        def stopping() -> None:
            if self._stop.is_set():
                raise _Stopping

        try:
            conn.ensure_connection(
                errback=failed, max_retries=None, callback=stopping,
                interval_start=settings.reconnect_initial_delay,
                interval_step=settings.reconnect_initial_delay,
                interval_max=settings.reconnect_max_delay, reraise_as_library_errors=False)
        except BaseException as exc:
            close_quietly(conn)
            if isinstance(exc, _Stopping | ConnectorError) or not isinstance(exc, Exception):
                raise
            raise translate(exc, doing) from exc
        return conn

    def _session(self, conn: BrokerConnection) -> None:
        self.current_connection = conn
        channels = self._subscribe(conn)
        self._on_connected()
        while not self._stop.is_set():
            self._apply_ops(channels)
            with self._cond:
                busy = bool(self._unsettled or self._ops)
            with contextlib.suppress(TimeoutError):  # a quiet slice
                conn.drain_events(timeout=BUSY_SLICE if busy else IDLE_SLICE)
            conn.heartbeat_check()
        self._apply_ops(channels)

    def _subscribe(self, conn: BrokerConnection) -> dict[str, Any]:
        topology = self._settings.topology
        main = conn.channel()
        main.auto_decode = False  # bodies stay bytes, exactly as published
        declare_topology(main, topology)
        quarantine = conn.channel()
        quarantine.auto_decode = False
        with self._cond:
            self._generation += 1
            generation = self._generation
            consuming = self._consuming
        if consuming:
            main.basic_qos(0, self._settings.prefetch, False)
            for queue in topology.intake_queues:
                main.basic_consume(queue, callback=partial(self._on_message, generation,
                                                           MAIN, queue))
            # One at a time: a crash while handling it cannot take other suspects along.
            quarantine.basic_qos(0, 1, False)
            quarantine.basic_consume(topology.quarantine_queue, callback=partial(
                self._on_message, generation, QUARANTINE, topology.quarantine_queue))
        with self._cond:
            self._connected = True
            self._last_error = None
            self._excuses.connected()
            self._cond.notify_all()
        log.info("consuming %s (prefetch %d)", ", ".join(topology.intake_queues),
                 self._settings.prefetch)
        return {MAIN: main, QUARANTINE: quarantine}

    def _on_message(self, generation: int, channel: str, queue: str, message: Any) -> None:
        body = message.body
        if isinstance(body, str):
            # py-amqp leaves an empty message's body as its default '' (no body frame): never
            # decode by the sender's content_encoding here ("binary", "gzip" are no codecs;
            # a LookupError would end the session and loop on the redelivery). The adapter
            # refuses empty and unknown-encoding records with their reason.
            body = body.encode("utf-8", "surrogatepass")
        properties = dict(message.properties)
        delivery = Delivery(
            generation=generation,
            channel=channel,
            delivery_tag=message.delivery_info["delivery_tag"],
            queue=queue,
            body=bytes(body),
            properties=properties,
            redelivered=bool(message.delivery_info.get("redelivered")),
        )
        with self._cond:
            if delivery.redelivered:
                delivery.suspect = not self._excuses.is_excused(delivery.queue,
                                                                delivery.fingerprint)
            self._unsettled[(generation, channel, delivery.delivery_tag)] = delivery
            heapq.heappush(self._ready, (-delivery.priority, next(self._arrivals), delivery))
            self._cond.notify_all()

    def _apply_ops(self, channels: dict[str, Any]) -> None:
        while True:
            with self._cond:
                if not self._ops:
                    return
                action, delivery, done = self._ops.popleft()
            try:
                if action == "cancel":
                    self._cancel_consumers(channels)
                elif delivery is not None:
                    self._settle(channels, action, delivery)
            finally:
                if done is not None:
                    done.set()

    def _settle(self, channels: dict[str, Any], action: str, delivery: Delivery) -> None:
        key = (delivery.generation, delivery.channel, delivery.delivery_tag)
        with self._cond:
            current = delivery.generation == self._generation
            self._unsettled.pop(key, None)
            if action == "requeue":
                self._excuses.excuse(delivery.fingerprint)
        if not current:
            log.info("%s of a delivery from a lost connection skipped: the broker "
                     "redelivers it (%s)", action, delivery.queue)
            return
        if action == "ack":
            channels[delivery.channel].basic_ack(delivery.delivery_tag)
        else:
            channels[delivery.channel].basic_reject(delivery.delivery_tag, requeue=True)

    def _cancel_consumers(self, channels: dict[str, Any]) -> None:
        with self._cond:
            self._consuming = False
        for channel in channels.values():
            for tag in list(channel.callbacks):
                channel.basic_cancel(tag)
        self._cancelled.set()

    def _lose(self, err: ConnectorError) -> None:
        with self._cond:
            was_connected = self._connected
            self._connected = False
            self._last_error = err
            self._generation += 1  # deliveries of the lost connection can no longer be acked
            held = [(d.queue, d.fingerprint) for d in self._unsettled.values()]
            self._unsettled.clear()
            if was_connected:
                topology = self._settings.topology
                limits = {queue: self._settings.prefetch for queue in topology.intake_queues}
                limits[topology.quarantine_queue] = 1
                self._excuses.connection_lost(held, limits)
            else:
                for _, fingerprint in held:
                    self._excuses.excuse(fingerprint)
            self._ready.clear()  # the broker redelivers them
            self._cond.notify_all()
        if self._consuming is False:
            self._cancelled.set()
        log.warning("RabbitMQ consumer connection %s: %s",
                    "lost" if was_connected else "failed", err.message)
        self._on_lost(err, was_connected)

    def _release_waiters(self) -> None:
        with self._cond:
            self._connected = False
            pending = [done for _, _, done in self._ops if done is not None]
            self._ops.clear()
            self._cond.notify_all()
        for event in pending:
            event.set()
        self._cancelled.set()


def _fingerprint(properties: dict[str, Any], body: bytes) -> str:
    """Identity of a message across redeliveries and re-publishing by the connector."""
    headers = properties.get("application_headers") or {}
    record_id = headers.get(H_RECORD_ID) or properties.get("message_id") or ""
    return f"{record_id}:{hashlib.sha256(body).hexdigest()}"
