"""Every certificate and CRL in use: listed with its config key, exported as gauges read at
scrape time, re-read when its file changes (peers' certificates, CRLs), ``connector certs``."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.config import load_config
from connector.config_schema import Config
from connector.metrics import ConnectorMetrics
from connector.trust import cmd_certs
from connector.trust.cert_inventory import PeerCertificates, inventory, trust_snapshot
from connector.trust.truststore import TrustStore
from tests.e2e.harness import A_ID, B_ID, CONFIG_A, World, derive_config
from tests.e2e.inprocess import daemon_pki, world  # noqa: F401


def _config(world: World, changes: dict[str, object] | None = None) -> Config:  # noqa: F811
    path = derive_config(CONFIG_A, world.tmp / "inventory.yaml", changes or {})
    return load_config(path, environ=world.env)


def _touch_later(path: Path) -> None:
    """Make a rewritten file's modification time differ from the cached one."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_inventory_names_every_certificate_and_crl_with_its_config_key(
    world: World,  # noqa: F811
) -> None:
    found = inventory(_config(world))
    assert not found.problems
    keys = {(c.role, c.name): c.key for c in found.certificates}
    assert keys[("seal", "")] == "trust.seal.cert"
    assert keys[("chain", "intermediate.pem")] == "trust.seal.chain[0]"
    assert keys[("encryption", "")] == "encryption.decryption_key.cert"
    assert keys[("peer_encryption", B_ID)] == f"encryption.certificates.{B_ID}"
    assert keys[("trust_anchor", "root.pem")] == "trust.trust_dir"
    assert {c.path.name for c in found.crls} == {"root.crl", "intermediate.crl"}
    assert all(c.next_update is not None for c in found.crls)


def test_peer_certificate_is_read_again_when_its_file_changes(
    world: World,  # noqa: F811
) -> None:
    peer = world.tmp / "peer.pem"
    shutil.copy(world.pki.agency(B_ID).encryption.cert, peer)
    peers = PeerCertificates(_config(world, {"encryption": {"certificates": {B_ID: str(peer)}}}))
    assert B_ID in peers.get(B_ID, [])[0].subject.rfc4514_string()
    shutil.copy(world.pki.agency(A_ID).encryption.cert, peer)  # renewed (here: another one)
    _touch_later(peer)
    assert A_ID in peers[B_ID][0].subject.rfc4514_string()
    peer.write_text("half-written")
    _touch_later(peer)
    assert A_ID in peers[B_ID][0].subject.rfc4514_string()  # the last good one is kept


def test_gauges_follow_the_files_without_restart(world: World) -> None:  # noqa: F811
    peer = world.tmp / "peer.pem"
    shutil.copy(world.pki.agency(B_ID).encryption.cert, peer)
    config = _config(world, {"encryption": {"certificates": {B_ID: str(peer)}}})
    metrics = ConnectorMetrics(process_metrics=False)
    metrics.use_trust_source(lambda: trust_snapshot(config))

    def gauges() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples
        }

    before = gauges()
    expiry = "connector_certificate_expiry_timestamp_seconds"
    peer_key = (expiry, (("name", B_ID), ("role", "peer_encryption")))
    assert peer_key in before
    assert (expiry, (("name", "root.pem"), ("role", "trust_anchor"))) in before
    assert ("connector_crl_next_update_timestamp_seconds", (("crl", "root.crl"),)) in before
    shutil.copy(world.pki.expired.cert, peer)
    _touch_later(peer)
    assert gauges()[peer_key] < before[peer_key]


def test_crls_are_read_again_when_the_folder_changes(world: World) -> None:  # noqa: F811
    crl_dir = world.tmp / "crl"
    shutil.copytree(world.pki.crl_dir, crl_dir)
    store = TrustStore.from_dirs(world.pki.trust_dir, crl_dir)
    assert len(store.crls) == 2
    (crl_dir / "root.crl").unlink()
    store.validation_context()
    assert len(store.crls) == 1
    (crl_dir / "broken.crl").write_bytes(b"not a CRL")
    store.refresh_crls()
    assert len(store.crls) == 1  # an unreadable folder keeps what was read before


def test_connector_certs_lists_days_left(
    world: World,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = derive_config(CONFIG_A, world.tmp / "good.yaml", {})
    for name in ("CONNECTOR_VAR", "CONNECTOR_PKI"):
        monkeypatch.setenv(name, world.env[name])
    assert cmd_certs.run(argparse.Namespace(config=str(good), json=False)) == 0
    out = capsys.readouterr().out
    assert "peer_encryption" in out and B_ID in out and "root.crl" in out
    expired = derive_config(
        CONFIG_A,
        world.tmp / "expired.yaml",
        {"encryption": {"certificates": {B_ID: str(world.pki.expired.cert)}}},
    )
    assert cmd_certs.run(argparse.Namespace(config=str(expired), json=False)) == 1
    assert "EXPIRED" in capsys.readouterr().out


def test_broker_tls_certificates_are_in_use_too(world: World) -> None:  # noqa: F811
    pair = world.pki.agency(A_ID).seal
    config = _config(
        world,
        {
            "local": {
                "type": "amqp",
                "amqp": {
                    "url": "amqps://agency@broker.example:5671//",
                    "tls_ca_file": str(world.pki.root_cert),
                    "tls_cert_file": str(pair.cert),
                    "tls_key_file": str(pair.key),
                },
            }
        },
    )
    keys = {(c.role, c.name): c.key for c in inventory(config).certificates}
    assert keys[("broker_tls_client", "")] == "local.amqp.tls_cert_file"
    assert keys[("broker_tls_ca", "root.pem")] == "local.amqp.tls_ca_file"


def test_connector_certs_json_lines(
    world: World,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    for name in ("CONNECTOR_VAR", "CONNECTOR_PKI"):
        monkeypatch.setenv(name, world.env[name])
    config = derive_config(CONFIG_A, world.tmp / "json.yaml", {})
    assert cmd_certs.run(argparse.Namespace(config=str(config), json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    peers = [x for x in lines if x.get("role") == "peer_encryption"]
    assert peers and peers[0]["name"] == B_ID and peers[0]["days_left"] > 300
    assert {x["file"].rsplit("/", 1)[-1] for x in lines if x["kind"] == "crl"} == {
        "root.crl",
        "intermediate.crl",
    }
