"""The Grafana dashboard and the alert rules name only metrics the connector exports; every
alert links its runbook section in docs/operations.md; a missing target alerts (absent());
the rules pass promtool and fire when they should."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from connector.errors import TransientError
from connector.metrics import ConnectorMetrics, StoreSnapshot, TrustSnapshot

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboard.json"
ALERTS = REPO / "config" / "alerts.yml"
RUNBOOK = REPO / "docs" / "operations.md"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
# Series Prometheus itself makes for a scrape target.
PROMETHEUS_SERIES = {"up"}


def exported_names() -> set[str]:
    """Every series name a connector exports once each kind of event happened."""
    metrics = ConnectorMetrics(version="test")
    metrics.document("outbound", "sent")
    metrics.observe_stage("seal", 0.1)
    metrics.send_attempt("edoc", TransientError("x", reason="hub_timeout"))
    metrics.refused_record("secret_document")
    metrics.broker_publish_failed("unroutable")
    metrics.set_component_up("hub", True)
    metrics.set_certificate_expiry("seal", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    metrics.use_store_snapshot(
        lambda: StoreSnapshot(packages={("out", "edoc", "SENT"): 1},
                              recipients_waiting={"SENT": (1, 60.0)})
    )
    metrics.use_trust_source(
        lambda: TrustSnapshot((("trust_anchor", "root.pem", 2e9),), (("root.crl", 2e9),))
    )
    # A connector serving several organisations adds its per-organisation counters.
    from connector.daemon.organisation_metrics import OrganisationCounters

    counters = OrganisationCounters(metrics.registry, ["000.00.31.H12"])
    counters.refused_record("000.00.31.H12", "secret_document")
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_queries() -> list[str]:
    document = json.loads(DASHBOARD.read_text("utf-8"))
    queries: list[str] = []
    for panel in document["panels"]:
        queries.extend(target["expr"] for target in panel.get("targets", []))
    return queries


def alert_rules() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS.read_text("utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def metric_names(query: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', query)
    return set(re.findall(r"\b(connector_[a-z0-9_]+|up)\b", without_strings))


def test_every_dashboard_query_names_an_exported_metric() -> None:
    exported = exported_names() | PROMETHEUS_SERIES
    queries = dashboard_queries()
    assert len(queries) >= 10
    for query in queries:
        names = metric_names(query)
        assert names, f"no connector metric in {query!r}"
        assert names <= exported, f"{query!r} names {names - exported}, not exported"


def test_dashboard_shows_what_an_operator_watches() -> None:
    used = set().union(*(metric_names(q) for q in dashboard_queries()))
    for needed in (
        "connector_documents_total",  # throughput
        "connector_refused_records_total",  # failures by reason
        "connector_outbox_oldest_age_seconds",  # outbox age
        "connector_recipients_oldest_wait_seconds",  # stuck recipients
        "connector_certificate_expiry_timestamp_seconds",
        "connector_crl_next_update_timestamp_seconds",
        "connector_component_up",
    ):
        assert needed in used, needed


def test_every_alert_names_exported_metrics_and_links_its_runbook_section() -> None:
    exported = exported_names() | PROMETHEUS_SERIES
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text("utf-8").splitlines()
        if line.startswith("#")
    }
    rules = alert_rules()
    for rule in rules:
        name = str(rule["alert"])
        assert metric_names(str(rule["expr"])) <= exported, name
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        url = str(annotations.get("runbook_url", ""))
        assert url.endswith(f"#{name.lower()}"), name
        assert name.lower() in anchors, f"docs/operations.md has no section {name}"
    absent = [r for r in rules if str(r["expr"]).startswith("absent(")]
    assert absent and 'job="edoc-connector"' in str(absent[0]["expr"])


@needs_promtool
def test_promtool_check_rules() -> None:
    checked = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


NEW_ALERT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    external_labels: {{runbook_base: "https://intranet.example/edoc/operations.html"}}
    input_series:
      - series: 'connector_recipients_oldest_wait_seconds{{instance="a",state="SENT"}}'
        values: '14000+60x60'
      - series: 'connector_recipients_oldest_wait_seconds{{instance="a",state="ARRIVED"}}'
        values: '90000x60'
      - series: 'connector_crl_next_update_timestamp_seconds{{instance="a",crl="root.crl"}}'
        values: '600x60'
      - series: 'up{{job="other",instance="b"}}'
        values: '1x60'
      - series: 'connector_certificate_expiry_timestamp_seconds{{instance="a",role="peer_encryption",name="000.00.32.H12"}}'
        values: '86400x60'
    alert_rule_test:
      - eval_time: 30m
        alertname: EdocRecipientsStuck
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a, state: SENT}}
            exp_annotations:
              runbook_url: "https://intranet.example/edoc/operations.html#edocrecipientsstuck"
              summary: "edoc-connector a: a recipient has been SENT for 4h 23m 20s"
              description: "A sent document has had no arrival notice (status 01) from a recipient for more than 4 hours. List them with `connector messages list --recipient-state SENT --older-than 4h`."
      - eval_time: 20m
        alertname: EdocCrlOutOfDate
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a, crl: root.crl}}
            exp_annotations:
              runbook_url: "https://intranet.example/edoc/operations.html#edoccrloutofdate"
              summary: "edoc-connector a: CRL root.crl is out of date"
              description: "The CRL's next update has passed: signatures cannot be checked for revocation (hard-fail refuses them). Fetch the CA's current CRL into trust.crl_dir now."
      - eval_time: 10m
        alertname: EdocCertificateExpiryImminent
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a, role: peer_encryption, name: 000.00.32.H12}}
            exp_annotations:
              runbook_url: "https://intranet.example/edoc/operations.html#edoccertificateexpiryimminent"
              summary: "edoc-connector a: peer_encryption 000.00.32.H12 certificate expires in 1.0 days"
              description: "Less than a week left: renew the peer_encryption certificate now."
      - eval_time: 15m
        alertname: EdocConnectorAbsent
        exp_alerts:
          - exp_labels: {{severity: critical, job: edoc-connector}}
            exp_annotations:
              runbook_url: "https://intranet.example/edoc/operations.html#edocconnectorabsent"
              summary: "edoc-connector: no scrape target at all"
              description: "Prometheus has no edoc-connector target (job=\\"edoc-connector\\") for 10 minutes: the target was removed from the scrape configuration or service discovery lost it, so EdocConnectorDown cannot fire."
"""


@needs_promtool
def test_new_alerts_fire_when_they_should(tmp_path: Path) -> None:
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(NEW_ALERT_TESTS.format(rules=json.dumps(str(ALERTS))))
    checked = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
