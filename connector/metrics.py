"""Delivery metrics for Prometheus: one registry object per connector.

``ConnectorMetrics`` owns its own ``CollectorRegistry`` (never the global default), so two
connectors in one process, or tests, do not clash. Names follow Prometheus conventions:
``connector_`` prefix, base units (seconds, timestamps in seconds), ``_total`` counters,
help text on every metric. Labels are bounded: values come from fixed sets or pass a guard
that folds anything unexpected (or beyond a small number of distinct values) into
``other``; document ids never become labels. Store-derived gauges (outbox, packages by
state, rule R6 deadlines) are read at scrape time from a snapshot callback supplied by
the daemon. The HTTP endpoint lives in ``connector.metrics_http``. This module must not
do I/O besides calling that callback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from connector.edxml.model import QCVN_ELEMENTS
from connector.errors import ConnectorError

log = logging.getLogger(__name__)
SNAPSHOT_MAX_AGE = 1.0  # seconds a store snapshot serves scrapes (a scrape loop's bound)

DIRECTIONS = ("outbound", "inbound")
OUTBOUND_OUTCOMES = ("accepted", "refused", "sent", "failed")
INBOUND_OUTCOMES = (
    "received", "delivered", "rejected", "duplicate", "failed", "sender_unverified",
)
SEND_KINDS = ("edoc", "status")
SEND_RESULTS = ("ok", "transient", "unavailable", "permanent", "configuration")
STATUS_CODES = ("01", "02", "03", "04", "05", "06", "13", "15", "16")
COMPONENTS = ("broker", "spool", "hub", "store")
DEADLINE_STATES = ("at_risk", "late")
DEVIATION_ELEMENTS = tuple(sorted(QCVN_ELEMENTS))
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

_DIRECTION_ALIASES = {"out": "outbound", "in": "inbound"}
_CODE = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,47}")


class LabelGuard:
    """Keeps one label's values bounded: a fixed set, or at most ``limit`` well-formed codes."""

    def __init__(self, allowed: Iterable[str] = (), *, limit: int = 0) -> None:
        self._values = set(allowed)
        self._limit = max(limit, len(self._values))
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        text = str(value).strip().lower()
        if text in self._values:
            return text
        with self._lock:
            if _CODE.fullmatch(text) and len(self._values) < self._limit:
                self._values.add(text)
                return text
        return "other"


class _DirectionGuard(LabelGuard):
    """outbound / inbound; the store's short forms out / in are accepted."""

    def __init__(self) -> None:
        super().__init__(DIRECTIONS)

    def __call__(self, value: object) -> str:
        text = str(value).strip().lower()
        return super().__call__(_DIRECTION_ALIASES.get(text, text))


@dataclass(frozen=True)
class StoreSnapshot:
    """What the tracking store reports at each scrape (counts, never document ids)."""

    outbox_packages: int = 0  # outbound packages waiting to be sent (new, queued, retrying)
    outbox_oldest_age_seconds: float = 0.0  # age of the oldest of them; 0 when empty
    # (direction, kind, state) -> count; direction outbound/inbound (or out/in), kind edoc/status
    packages: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    deadline_at_risk: int = 0  # R6: not yet sent, deadline within the warning window
    deadline_late: int = 0  # R6: not yet sent, deadline passed
    # recipient state (PENDING, SENT, ...) -> (recipients, seconds since the oldest changed)
    recipients_waiting: Mapping[str, tuple[int, float]] = field(default_factory=dict)


WAITING_RECIPIENT_STATES = (
    "PENDING", "SENT", "ARRIVED", "ACCEPTED", "ASSIGNED", "PROCESSING", "RECALL_REQUESTED"
)


@dataclass(frozen=True)
class TrustSnapshot:
    """Certificates and CRLs in use, read at each scrape (files may change without restart)."""

    # (role, name, notAfter as a Unix timestamp); name: OrganId or file name, "" for ours
    certificates: tuple[tuple[str, str, float], ...] = ()
    crls: tuple[tuple[str, float], ...] = ()  # (CRL file name, nextUpdate timestamp)


class ConnectorMetrics:
    """Every metric of one connector, recorded through small typed methods."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        version: str = "",
        process_metrics: bool = True,
    ) -> None:
        # The *_created series double every counter for little use; the switch is
        # process-wide in prometheus-client, and the connector owns its process.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._direction = _DirectionGuard()
        self._outcome = LabelGuard((*OUTBOUND_OUTCOMES, *INBOUND_OUTCOMES))
        self._stage = LabelGuard(limit=40)
        self._send_kind = LabelGuard(SEND_KINDS)
        self._send_result = LabelGuard(SEND_RESULTS)
        self._status_direction = LabelGuard(("sent", "received"))
        self._status_code = LabelGuard(STATUS_CODES)
        self._reason = LabelGuard(limit=60)
        self._role = LabelGuard(limit=20)
        self._component = LabelGuard(COMPONENTS, limit=10)
        self._publish_reason = LabelGuard(limit=20)
        self._components: dict[str, bool] = {}
        self._components_lock = threading.Lock()
        # What the local side is: a spool deployment has no broker, so its outages (and the
        # stages reporting them as "broker") are shown as the spool's.
        self.local_side = "broker"
        self._certificates: dict[str, float] = {}  # role -> notAfter (readiness probe)

        self.documents = Counter(
            "connector_documents_total",
            "Documents by direction and outcome (outbound: accepted from the local side, "
            "refused before packaging, sent to the hub, failed for good; inbound: received "
            "from the hub, delivered to the local side, rejected, duplicate).",
            ["direction", "outcome"], registry=r)
        self.stage_duration = Histogram(
            "connector_stage_duration_seconds",
            "Time spent in each pipeline stage, in seconds.",
            ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.send_attempts = Counter(
            "connector_send_attempts_total",
            "Attempts to send a package to the hub, by package kind and result "
            "(ok, transient, unavailable, permanent, configuration).",
            ["kind", "result"], registry=r)
        self.statuses = Counter(
            "connector_statuses_total",
            "edXML status notices sent to or received from peers, by status code.",
            ["direction", "code"], registry=r)
        self.refused = Counter(
            "connector_refused_records_total",
            "Local records refused and dead-lettered, by reason code.",
            ["reason"], registry=r)
        # Certificate expiry and CRL next update come from _TrustCollector, which reads the
        # files in use at each scrape (a renewed certificate shows without restart).
        self._trust_source: Callable[[], TrustSnapshot] | None = None
        self.component_up = Gauge(
            "connector_component_up",
            "Whether a dependency is reachable (1) or not (0): broker, hub, store.",
            ["component"], registry=r)
        self.broker_reconnects = Counter(
            "connector_broker_reconnects_total",
            "Times the connection to the message broker was lost and re-established.",
            registry=r)
        self.broker_redeliveries = Counter(
            "connector_broker_redeliveries_total",
            "Records the broker delivered again (after a connection loss, release or crash).",
            registry=r)
        self.broker_quarantined = Counter(
            "connector_broker_quarantined_total",
            "Records moved to the quarantine queue because a connector stopped while "
            "handling them.", registry=r)
        self.broker_publish_failures = Counter(
            "connector_broker_publish_failures_total",
            "Publishes to the broker that were not confirmed, by reason "
            "(unroutable, broker_nack, broker_timeout, broker_unavailable, ...).",
            ["reason"], registry=r)
        self.store_snapshot_errors = Counter(
            "connector_store_snapshot_errors_total",
            "Scrapes where the store-derived gauges could not be read.", registry=r)
        self.received_deviations = Counter(
            "connector_received_deviations_total",
            "Departures from QCVN 102 in received packages that were accepted with a warning "
            "(receive level), by element (QCVN's element names; anything else is 'other').",
            ["element"], registry=r)
        Info("connector_build", "Version of the running connector.", registry=r).info(
            {"version": version or "unknown"})
        if process_metrics:
            ProcessCollector(registry=r)
        self._snapshot_source: Callable[[], StoreSnapshot] | None = None
        # Anyone who reaches the port can scrape in a loop: the store is read at most once
        # per SNAPSHOT_MAX_AGE whatever the request rate (a failure is remembered as long).
        self.snapshot_clock: Callable[[], float] = time.monotonic
        self._snapshot_cache: tuple[float, StoreSnapshot | None] | None = None
        self._snapshot_lock = threading.Lock()
        r.register(_StoreCollector(self))
        r.register(_TrustCollector(self))
        self._initialise_series()

    def _initialise_series(self) -> None:
        """Known label combinations start at 0, so rate() and alerts see them at once."""
        for outcome in OUTBOUND_OUTCOMES:
            self.documents.labels("outbound", outcome)
        for outcome in INBOUND_OUTCOMES:
            self.documents.labels("inbound", outcome)
        for kind in SEND_KINDS:
            for result in SEND_RESULTS:
                self.send_attempts.labels(kind, result)
        for direction in ("sent", "received"):
            for code in STATUS_CODES:
                self.statuses.labels(direction, code)
        for element in (*DEVIATION_ELEMENTS, "other"):
            self.received_deviations.labels(element)

    # ---- recording --------------------------------------------------------------------

    def document(self, direction: str, outcome: str, count: int = 1) -> None:
        self.documents.labels(self._direction(direction), self._outcome(outcome)).inc(count)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_duration.labels(self._stage(stage)).observe(max(0.0, seconds))

    @contextlib.contextmanager
    def time_stage(self, stage: str) -> Iterator[None]:
        """Time a block (also when it raises) as one observation of ``stage``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe_stage(stage, time.perf_counter() - started)

    def send_attempt(self, kind: str, error: ConnectorError | None = None) -> None:
        """Count one send attempt; ``error`` None means the hub took the package."""
        result = "ok" if error is None else error.kind
        self.send_attempts.labels(self._send_kind(kind), self._send_result(result)).inc()

    def status(self, direction: str, code: str) -> None:
        self.statuses.labels(self._status_direction(direction), self._status_code(code)).inc()

    def refused_record(self, reason: str) -> None:
        self.refused.labels(self._reason(reason)).inc()

    def received_deviation(self, element: str | None) -> None:
        """One departure from QCVN 102 accepted with a warning in a received package."""
        # Element names are case-sensitive (OrganId), so not LabelGuard (it lower-cases).
        label = element if element in QCVN_ELEMENTS else "other"
        self.received_deviations.labels(label).inc()

    def set_certificate_expiry(self, role: str, not_after: dt.datetime) -> None:
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
        name = self._role(role)
        with self._components_lock:
            self._certificates[name] = not_after.timestamp()

    def use_trust_source(self, source: Callable[[], TrustSnapshot] | None) -> None:
        """The callback read at every scrape for every certificate's expiry and every CRL's
        next update (set by the daemon from the certificate inventory)."""
        self._trust_source = source

    def trust(self) -> TrustSnapshot:
        """Every certificate's expiry and CRL's next update, as the gauges show them."""
        return self._trust()

    def _trust(self) -> TrustSnapshot:
        certificates = {(role, ""): expiry for role, expiry in self.certificate_expiries().items()}
        crls: tuple[tuple[str, float], ...] = ()
        source = self._trust_source
        if source is not None:
            try:
                found = source()
            except Exception:  # an unreadable file must not break /metrics
                log.warning("reading certificates for metrics failed", exc_info=True)
                found = TrustSnapshot()
            for role, name, expiry in found.certificates:
                certificates[(self._role(role), name)] = expiry
            crls = found.crls
        return TrustSnapshot(
            tuple((role, name, expiry) for (role, name), expiry in sorted(certificates.items())),
            crls,
        )

    def certificate_expiries(self) -> dict[str, float]:
        """role -> notAfter (seconds since the epoch) of every certificate recorded."""
        with self._components_lock:
            return dict(self._certificates)

    def set_component_up(self, component: str, up: bool) -> None:
        if component == "broker":
            component = self.local_side
        name = self._component(component)
        self.component_up.labels(name).set(1 if up else 0)
        with self._components_lock:
            self._components[name] = up

    def components(self) -> dict[str, bool]:
        with self._components_lock:
            return dict(self._components)

    def healthy(self) -> bool:
        """True when every component reported so far is up."""
        return all(self.components().values())

    def broker_reconnected(self) -> None:
        self.broker_reconnects.inc()

    def broker_redelivered(self) -> None:
        self.broker_redeliveries.inc()

    def broker_quarantine(self) -> None:
        self.broker_quarantined.inc()

    def broker_publish_failed(self, reason: str) -> None:
        self.broker_publish_failures.labels(self._publish_reason(reason)).inc()

    def use_store_snapshot(self, source: Callable[[], StoreSnapshot] | None) -> None:
        """The callback read at every scrape for the store-derived gauges."""
        self._snapshot_source = source
        self._snapshot_cache = None

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def _snapshot(self) -> StoreSnapshot | None:
        source = self._snapshot_source
        if source is None:
            return None
        with self._snapshot_lock:  # concurrent scrapes wait for one read
            now = self.snapshot_clock()
            cached = self._snapshot_cache
            if cached is not None and 0 <= now - cached[0] < SNAPSHOT_MAX_AGE:
                return cached[1]
            try:
                snapshot: StoreSnapshot | None = source()
            except Exception:  # a failing store must not break /metrics
                log.warning("reading the store for metrics failed", exc_info=True)
                self.store_snapshot_errors.inc()
                snapshot = None
            self._snapshot_cache = (now, snapshot)
            return snapshot


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time (one snapshot per scrape)."""

    def __init__(self, metrics: ConnectorMetrics) -> None:
        self._metrics = metrics
        self._kind = LabelGuard(SEND_KINDS)
        self._state = LabelGuard(limit=30)

    def describe(self) -> Iterable[Metric]:
        return list(self._families(StoreSnapshot()))

    def collect(self) -> Iterable[Metric]:
        snapshot = self._metrics._snapshot()
        return [] if snapshot is None else list(self._families(snapshot))

    def _families(self, snapshot: StoreSnapshot) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "connector_outbox_packages",
            "Outbound packages waiting to be sent to the hub (new, queued or retrying).",
            value=snapshot.outbox_packages)
        yield GaugeMetricFamily(
            "connector_outbox_oldest_age_seconds",
            "Age in seconds of the oldest outbound package still waiting to be sent; "
            "0 when the outbox is empty.",
            value=snapshot.outbox_oldest_age_seconds)
        packages = GaugeMetricFamily(
            "connector_packages",
            "Tracked packages by direction (outbound, inbound), kind (edoc, status) and state.",
            labels=["direction", "kind", "state"])
        folded: dict[tuple[str, str, str], int] = {}
        for (direction, kind, state), count in sorted(snapshot.packages.items()):
            key = (self._metrics._direction(direction), self._kind(kind), self._state(state))
            folded[key] = folded.get(key, 0) + count
        for labels, count in folded.items():
            packages.add_metric(list(labels), count)
        yield packages
        deadline = GaugeMetricFamily(
            "connector_send_deadline_documents",
            "Outbound documents not yet sent whose same-day sending deadline (rule R6: the "
            "signing day, at the latest the next working morning) is near (at_risk) or "
            "past (late).",
            labels=["state"])
        deadline.add_metric(["at_risk"], snapshot.deadline_at_risk)
        deadline.add_metric(["late"], snapshot.deadline_late)
        yield deadline
        waiting = GaugeMetricFamily(
            "connector_recipients_waiting",
            "Recipients of outbound documents per state that waits for the peer or the hub "
            "(PENDING, SENT: no arrival notice yet, ARRIVED, ... PROCESSING).",
            labels=["state"])
        oldest = GaugeMetricFamily(
            "connector_recipients_oldest_wait_seconds",
            "Seconds the longest-waiting recipient has been in this state; 0 when none.",
            labels=["state"])
        for state in WAITING_RECIPIENT_STATES:
            count, age = snapshot.recipients_waiting.get(state, (0, 0.0))
            waiting.add_metric([state], count)
            oldest.add_metric([state], age)
        yield waiting
        yield oldest


class _TrustCollector(Collector):
    """Certificate expiry and CRL next update, read at scrape time."""

    def __init__(self, metrics: ConnectorMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families(TrustSnapshot()))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self._metrics._trust()))

    def _families(self, snapshot: TrustSnapshot) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "connector_certificate_expiry_timestamp_seconds",
            "Expiry (notAfter) of each certificate the connector uses, as a Unix timestamp, by "
            "role (seal, xml_signer, encryption, hub_tls_client, peer_encryption, "
            "trust_anchor, ca) and name (OrganId or file); days left = (value - time()) / 86400.",
            labels=["role", "name"])
        for role, name, value in snapshot.certificates:
            expiry.add_metric([role, name], value)
        yield expiry
        crl = GaugeMetricFamily(
            "connector_crl_next_update_timestamp_seconds",
            "When each CRL of trust.crl_dir is due to be replaced (nextUpdate), as a Unix "
            "timestamp; past it, revocation checks fail in hard-fail mode.",
            labels=["crl"])
        for name, value in snapshot.crls:
            crl.add_metric([name], value)
        yield crl
