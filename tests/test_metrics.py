"""Delivery metrics: what is recorded is what is served, in a form promtool accepts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.errors import PermanentError, TransientError
from connector.metrics import ConnectorMetrics, StoreSnapshot
from connector.metrics_http import MetricsServer, MetricsSettings
from connector.metrics_store import store_snapshot_source

REPO = Path(__file__).resolve().parents[1]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def samples(metrics: ConnectorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def metrics() -> ConnectorMetrics:
    return ConnectorMetrics(version="0.1.0-test")


@pytest.fixture
def server(metrics: ConnectorMetrics) -> Iterator[MetricsServer]:
    with MetricsServer(metrics, MetricsSettings(port=0)) as running:
        yield running


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def record_a_day(metrics: ConnectorMetrics) -> None:
    for _ in range(3):
        metrics.document("outbound", "accepted")
    metrics.document("outbound", "sent", 2)
    metrics.document("inbound", "received")
    metrics.document("inbound", "delivered")
    metrics.send_attempt("edoc")
    metrics.send_attempt("edoc", TransientError("hub 503", reason="hub_unavailable"))
    metrics.send_attempt("status", PermanentError("refused", reason="hub_refused"))
    metrics.status("sent", "01")
    metrics.status("received", "03")
    metrics.refused_record("secret_document")
    metrics.observe_stage("seal", 0.05)
    with metrics.time_stage("validate"):
        pass
    metrics.set_certificate_expiry("organisation_seal", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    metrics.set_component_up("broker", True)
    metrics.set_component_up("hub", True)


def test_counters_reflect_what_was_recorded(metrics: ConnectorMetrics) -> None:
    record_a_day(metrics)
    found = samples(metrics)
    assert found[("connector_documents_total", (("direction", "outbound"),
                                                ("outcome", "accepted")))] == 3
    assert found[("connector_documents_total", (("direction", "outbound"),
                                                ("outcome", "sent")))] == 2
    assert found[("connector_documents_total", (("direction", "outbound"),
                                                ("outcome", "failed")))] == 0  # pre-created
    assert found[("connector_send_attempts_total", (("kind", "edoc"), ("result", "ok")))] == 1
    assert found[("connector_send_attempts_total",
                  (("kind", "edoc"), ("result", "transient")))] == 1
    assert found[("connector_send_attempts_total",
                  (("kind", "status"), ("result", "permanent")))] == 1
    assert found[("connector_statuses_total", (("code", "01"), ("direction", "sent")))] == 1
    assert found[("connector_statuses_total", (("code", "03"), ("direction", "received")))] == 1
    assert found[("connector_refused_records_total", (("reason", "secret_document"),))] == 1
    assert found[("connector_stage_duration_seconds_count", (("stage", "seal"),))] == 1
    assert found[("connector_stage_duration_seconds_count", (("stage", "validate"),))] == 1
    assert found[("connector_certificate_expiry_timestamp_seconds",
                  (("name", ""), ("role", "organisation_seal")))] == 1893456000
    assert found[("connector_component_up", (("component", "broker"),))] == 1
    assert found[("connector_build_info", (("version", "0.1.0-test"),))] == 1


def test_every_metric_is_prefixed_and_documented(metrics: ConnectorMetrics) -> None:
    record_a_day(metrics)
    metrics.use_store_snapshot(lambda: StoreSnapshot(outbox_packages=1))
    families = list(text_string_to_metric_families(metrics.render().decode()))
    ours = [f for f in families if not f.name.startswith("process_")]
    assert len(ours) >= 15
    for family in ours:
        assert family.name.startswith("connector_"), family.name
        assert len(family.documentation) > 20, family.name


def test_labels_stay_bounded(metrics: ConnectorMetrics) -> None:
    metrics.document("outbound", "exploded")  # not an outcome
    metrics.status("sent", "99")  # not a status code
    for index in range(200):  # a bug feeding document ids as reasons
        metrics.refused_record(f"doc_{index}")
    metrics.refused_record("Bad Reason With Spaces")
    found = samples(metrics)
    assert found[("connector_documents_total", (("direction", "outbound"),
                                                ("outcome", "other")))] == 1
    assert found[("connector_statuses_total", (("code", "other"), ("direction", "sent")))] == 1
    reasons = {labels for name, labels in found if name == "connector_refused_records_total"}
    assert len(reasons) <= 61
    assert found[("connector_refused_records_total", (("reason", "other"),))] == 141


def test_received_deviations_are_counted_by_known_element(metrics: ConnectorMetrics) -> None:
    metrics.received_deviation("OrganId")
    metrics.received_deviation("OrganId")
    metrics.received_deviation("HubExtension")  # not a QCVN element
    metrics.received_deviation(None)  # e.g. stray bytes before the declaration
    found = samples(metrics)
    name = "connector_received_deviations_total"
    assert found[(name, (("element", "OrganId"),))] == 2
    assert found[(name, (("element", "other"),))] == 2
    assert found[(name, (("element", "Subject"),))] == 0  # known elements start at 0
    assert len({labels for n, labels in found if n == name}) <= 77


def test_two_connectors_in_one_process_do_not_clash() -> None:
    first, second = ConnectorMetrics(), ConnectorMetrics()
    first.document("inbound", "received")
    assert samples(second)[("connector_documents_total", (("direction", "inbound"),
                                                          ("outcome", "received")))] == 0


def test_store_gauges_are_read_at_scrape_time(metrics: ConnectorMetrics) -> None:
    calls = []

    def snapshot() -> StoreSnapshot:
        calls.append(1)
        return StoreSnapshot(
            outbox_packages=4, outbox_oldest_age_seconds=125.5,
            packages={("out", "edoc", "READY"): 3, ("out", "status", "READY"): 1,
                      ("in", "edoc", "DELIVERED"): 7},
            deadline_at_risk=2, deadline_late=1)

    metrics.use_store_snapshot(snapshot)
    found = samples(metrics)
    assert len(calls) == 1  # one store read per scrape
    assert found[("connector_outbox_packages", ())] == 4
    assert found[("connector_outbox_oldest_age_seconds", ())] == 125.5
    assert found[("connector_packages", (("direction", "outbound"), ("kind", "edoc"),
                                         ("state", "ready")))] == 3
    assert found[("connector_packages", (("direction", "inbound"), ("kind", "edoc"),
                                         ("state", "delivered")))] == 7
    assert found[("connector_send_deadline_documents", (("state", "at_risk"),))] == 2
    assert found[("connector_send_deadline_documents", (("state", "late"),))] == 1


def test_a_failing_store_does_not_break_the_scrape(metrics: ConnectorMetrics) -> None:
    def broken() -> StoreSnapshot:
        raise OSError("database is locked")

    metrics.use_store_snapshot(broken)
    samples(metrics)
    found = samples(metrics)  # the error counter moves during the scrape: seen on the next
    assert ("connector_outbox_packages", ()) not in found
    assert found[("connector_store_snapshot_errors_total", ())] >= 1


@dataclass
class _Value:
    value: str


@dataclass
class _Row:
    direction: _Value
    kind: _Value
    state: _Value
    count: int


class FakeStore:
    def counts(self) -> list[_Row]:
        return [_Row(_Value("out"), _Value("edoc"), _Value("ACCEPTED"), 2),
                _Row(_Value("out"), _Value("edoc"), _Value("READY"), 3),
                _Row(_Value("out"), _Value("edoc"), _Value("SENT"), 40)]

    def oldest_outbox_age(self, now: float | None = None) -> float | None:
        return 90.0

    def count_past_deadline(self, now: float | None = None) -> int:
        return 1 if now is not None and now < 1_000 else 3  # 2 more within the window


def test_store_bridge_builds_the_snapshot() -> None:
    snapshot = store_snapshot_source(FakeStore(), at_risk_window=7200, clock=lambda: 0.0)()
    assert snapshot.outbox_packages == 5  # ACCEPTED + READY, not SENT
    assert snapshot.outbox_oldest_age_seconds == 90.0
    assert snapshot.packages[("out", "edoc", "SENT")] == 40
    assert (snapshot.deadline_late, snapshot.deadline_at_risk) == (1, 2)


def test_http_server_serves_metrics_and_health(metrics: ConnectorMetrics,
                                               server: MetricsServer) -> None:
    record_a_day(metrics)
    status, content_type, body = get(server.url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert b'connector_documents_total{direction="outbound",outcome="sent"} 2.0' in body

    status, content_type, body = get(server.url + "/healthz")  # alias of /readyz
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"
    assert json.loads(body)["components"]["hub"] == {"status": "up"}

    metrics.set_component_up("hub", False)
    status, _, body = get(server.url + "/healthz")
    assert status == 503
    assert json.loads(body)["components"]["hub"] == {"status": "down"}
    assert get(server.url + "/livez")[0] == 200  # a hub outage is no reason to restart
    assert get(server.url + "/nothing")[0] == 404


def test_server_stops_and_frees_its_port(metrics: ConnectorMetrics) -> None:
    running = MetricsServer(metrics, MetricsSettings(port=0))
    running.start()
    url = running.url
    running.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/metrics", timeout=2)


@needs_promtool
def test_promtool_accepts_the_metrics_output(metrics: ConnectorMetrics,
                                             server: MetricsServer) -> None:
    record_a_day(metrics)
    metrics.use_store_snapshot(lambda: StoreSnapshot(
        outbox_packages=1, packages={("out", "edoc", "READY"): 1}))
    _, _, body = get(server.url + "/metrics")
    checked = subprocess.run([str(PROMTOOL), "check", "metrics"], input=body,
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b""  # no lint warnings


@needs_promtool
def test_alert_rules_pass_promtool() -> None:
    checked = subprocess.run([str(PROMTOOL), "check", "rules", str(REPO / "config/alerts.yml")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


ALERT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'connector_send_deadline_documents{{instance="a",state="late"}}'
        values: '0 0 2 2'
      - series: 'connector_certificate_expiry_timestamp_seconds{{instance="a",role="organisation_seal"}}'
        values: '864000x120'
      - series: 'connector_component_up{{instance="a",component="hub"}}'
        values: '1 0 0 0 0 0 0 0'
      - series: 'connector_documents_total{{instance="a",direction="outbound",outcome="failed"}}'
        values: '0 0 1 1'
    alert_rule_test:
      - eval_time: 3m
        alertname: EdocDocumentsLate
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a, state: late}}
            exp_annotations:
              runbook_url: "docs/operations.md#edocdocumentslate"
              summary: "edoc-connector a: 2 document(s) past their R6 deadline"
              description: "Signed documents were not sent by the end of the next working morning (rule R6)."
      - eval_time: 3m
        alertname: EdocDocumentsFailed
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a, direction: outbound, outcome: failed}}
            exp_annotations:
              runbook_url: "docs/operations.md#edocdocumentsfailed"
              summary: "edoc-connector a: 1 outbound document(s) failed in 15 minutes"
              description: "Documents failed for good (outbound) or were rejected (inbound). See `connector messages list --state FAILED` for the reasons."
      - eval_time: 3m
        alertname: EdocComponentDown
        exp_alerts: []
      - eval_time: 7m
        alertname: EdocConnectorComponentDown
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a, component: hub}}
            exp_annotations:
              runbook_url: "docs/operations.md#edocconnectorcomponentdown"
              summary: "edoc-connector a: hub is down"
              description: "The hub (broker, hub or store) has been unreachable for 5 minutes; the connector is waiting for it and documents are piling up."
      - eval_time: 90m
        alertname: EdocCertificateExpiringSoon
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a, role: organisation_seal}}
            exp_annotations:
              runbook_url: "docs/operations.md#edoccertificateexpiringsoon"
              summary: "edoc-connector a: organisation_seal certificate expires in 9.9 days"
              description: "Renew the organisation_seal certificate before it expires; signing or TLS will fail afterwards."
"""


@needs_promtool
def test_alert_rules_fire_when_they_should(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(ALERT_TESTS.format(rules=json.dumps(str(REPO / "config/alerts.yml"))))
    checked = subprocess.run([str(PROMTOOL), "test", "rules", str(tests)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_recipients_waiting_per_state_with_the_oldest_age(metrics: ConnectorMetrics) -> None:
    metrics.use_store_snapshot(
        lambda: StoreSnapshot(recipients_waiting={"SENT": (3, 5 * 3600.0), "ARRIVED": (1, 60.0)})
    )
    found = samples(metrics)
    assert found[("connector_recipients_waiting", (("state", "SENT"),))] == 3
    assert found[("connector_recipients_oldest_wait_seconds", (("state", "SENT"),))] == 18000
    assert found[("connector_recipients_waiting", (("state", "PENDING"),))] == 0  # always there


def test_scrapes_in_quick_succession_read_the_store_once(metrics: ConnectorMetrics) -> None:
    # /metrics is reachable by anyone who can reach the port: a client scraping in a loop
    # must not turn into a loop of store queries (nor a warning per scrape when it fails).
    calls = []
    now = [1000.0]
    metrics.snapshot_clock = lambda: now[0]

    def snapshot() -> StoreSnapshot:
        calls.append(1)
        return StoreSnapshot(outbox_packages=len(calls))

    metrics.use_store_snapshot(snapshot)
    for _ in range(50):
        found = samples(metrics)
    assert len(calls) == 1 and found[("connector_outbox_packages", ())] == 1
    now[0] += 1.5
    assert samples(metrics)[("connector_outbox_packages", ())] == 2
    metrics.use_store_snapshot(lambda: StoreSnapshot(outbox_packages=9))  # a new source: read
    assert samples(metrics)[("connector_outbox_packages", ())] == 9
