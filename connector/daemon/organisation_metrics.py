"""Metrics per organisation, for a connector serving several (README "Several organisations").

``connector_organisation_documents_total{organ,direction,outcome}`` and
``connector_organisation_refused_records_total{organ,reason}`` count each organisation's
documents and refusals beside the connector-wide counters, which stay as they are (their
series, alerts and dashboards do not change). The ``organ`` label is bounded by the
configuration: an OrganId that is not configured is counted as ``other``. Certificate expiry
is per organisation already: ``connector_certificate_expiry_timestamp_seconds`` names an
organisation's certificates by its OrganId (``name``).

:class:`OrganisationMetrics` is what one organisation's scoped services use: every call goes
to the shared metrics unchanged, and documents and refusals are also counted under the
organisation. This module counts; it must not decide anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

from connector.daemon.ports import Metrics
from connector.errors import ConnectorError
from connector.metrics import INBOUND_OUTCOMES, OUTBOUND_OUTCOMES, LabelGuard


class OrganisationCounters:
    """The per-organisation counters, registered once on the connector's registry."""

    def __init__(self, registry: CollectorRegistry, organ_ids: Iterable[str]) -> None:
        self._organs = frozenset(organ_ids)
        self._outcome = LabelGuard((*OUTBOUND_OUTCOMES, *INBOUND_OUTCOMES))
        self._reason = LabelGuard(limit=60)
        self.documents = Counter(
            "connector_organisation_documents_total",
            "Documents by organisation we serve (organ), direction and outcome (several "
            "organisations only; the same outcomes as connector_documents_total).",
            ["organ", "direction", "outcome"], registry=registry)
        self.refused = Counter(
            "connector_organisation_refused_records_total",
            "Local records refused, by the organisation they named (organ) and reason code.",
            ["organ", "reason"], registry=registry)
        for organ in sorted(self._organs):  # known series start at 0 (rate() and alerts)
            for outcome in OUTBOUND_OUTCOMES:
                self.documents.labels(organ, "outbound", outcome)
            for outcome in INBOUND_OUTCOMES:
                self.documents.labels(organ, "inbound", outcome)

    def organ(self, organ_id: str) -> str:
        return organ_id if organ_id in self._organs else "other"

    def document(self, organ_id: str, direction: str, outcome: str, count: int) -> None:
        side = {"out": "outbound", "in": "inbound"}.get(direction, direction)
        if side not in ("outbound", "inbound"):
            side = "other"
        self.documents.labels(self.organ(organ_id), side, self._outcome(outcome)).inc(count)

    def refused_record(self, organ_id: str, reason: str) -> None:
        self.refused.labels(self.organ(organ_id), self._reason(reason)).inc()


class OrganisationMetrics:
    """The shared metrics as one organisation's work feeds them."""

    def __init__(self, shared: Metrics, counters: OrganisationCounters, organ_id: str) -> None:
        self.shared = shared
        self._counters = counters
        self._organ_id = organ_id

    def document(self, direction: str, outcome: str, count: int = 1) -> None:
        self.shared.document(direction, outcome, count)
        self._counters.document(self._organ_id, direction, outcome, count)

    def refused_record(self, reason: str) -> None:
        self.shared.refused_record(reason)
        self._counters.refused_record(self._organ_id, reason)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.shared.observe_stage(stage, seconds)

    def send_attempt(self, kind: str, error: ConnectorError | None = None) -> None:
        self.shared.send_attempt(kind, error)

    def status(self, direction: str, code: str) -> None:
        self.shared.status(direction, code)

    def received_deviation(self, element: str | None) -> None:
        self.shared.received_deviation(element)

    def set_component_up(self, component: str, up: bool) -> None:
        self.shared.set_component_up(component, up)

    def __getattr__(self, name: str) -> object:
        # Anything else the shared metrics offer (stage timers, broker counters).
        return getattr(self.shared, name)
