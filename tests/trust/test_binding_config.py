"""Sender binding from configuration: ``trust.sender_binding`` and the directory's
``certificates`` blocks, built into one policy by ``wiring.origin_policy``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from connector.config import load_config
from connector.config_schema import PeerBindingConfig
from connector.daemon.wiring import origin_policy
from connector.errors import ConnectorError
from connector.mapping.directory import load_directory
from connector.trust.binding import Binding, SignerFacts
from connector.trust.keys import SigningIdentity
from tests.e2e.harness import CONFIG_B, derive_config

A, C = "000.00.31.H12", "000.00.33.H12"


def _config(tmp_path: Path, changes: dict[str, Any]) -> Any:
    path = derive_config(CONFIG_B, tmp_path / "b.yaml", changes)
    return load_config(path, environ={"CONNECTOR_VAR": str(tmp_path), "CONNECTOR_PKI":
                                      str(tmp_path / "pki")})


def test_defaults_bind_by_organ_id_and_deliver_unbound_senders_marked(tmp_path: Path) -> None:
    policy = origin_policy(_config(tmp_path, {}))
    assert policy.when_unbound == "deliver_unverified"
    assert policy.rules.organ_id_in_certificate and not policy.seals_must_be_bound


def test_peers_from_the_configuration_and_the_directory_are_merged(
    tmp_path: Path, seal_a: SigningIdentity
) -> None:
    pem = tmp_path / "a-seal.pem"
    from cryptography.hazmat.primitives import serialization

    pem.write_bytes(seal_a.certificate.public_bytes(serialization.Encoding.PEM))
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"organizations": [
        {"organ_id": A, "organ_name": "Sở Nội vụ", "certificates": {
            "issued_names": ["SỞ NỘI VỤ TỈNH CÀ MAU"]}},
        {"organ_id": C, "organ_name": "Sở Tư pháp"},
    ]}, allow_unicode=True), "utf-8")
    assert load_directory(directory).bindings[A].issued_names == ("SỞ NỘI VỤ TỈNH CÀ MAU",)
    config = _config(tmp_path, {"trust": {
        "pdf": {"inbound": {"seal_must_match_sender": True}},
        "sender_binding": {"when_unbound": "refuse", "peers": {
            A: {"pinned_certificates": [str(pem)], "organ_id_in_certificate": False}}},
    }})
    policy = origin_policy(config, directory)
    assert policy.when_unbound == "refuse" and policy.seals_must_be_bound
    facts = SignerFacts.of(seal_a.certificate)
    assert policy.rules.judge(facts, A) is Binding.BOUND  # by the pinned certificate
    unpinned = SignerFacts(facts.subject, facts.kind, A, ("SỞ NỘI VỤ TỈNH CÀ MAU",), "0" * 64,
                           "0" * 64)
    assert policy.rules.judge(unpinned, A) is Binding.BOUND  # by the directory's name
    no_name = SignerFacts(facts.subject, facts.kind, A, (), "0" * 64, "0" * 64)
    assert policy.rules.judge(no_name, A) is Binding.UNBOUND  # OrganId rule off for A


@pytest.mark.parametrize("value", ["abc", "z" * 64, "0" * 63])
def test_a_pin_must_be_a_sha256_fingerprint(value: str) -> None:
    with pytest.raises(ValidationError):
        PeerBindingConfig(pinned_sha256=[value])
    PeerBindingConfig(pinned_sha256=[":".join(["AB"] * 32)])


def test_a_directory_pin_is_checked_too(tmp_path: Path) -> None:
    directory = tmp_path / "directory.yaml"
    directory.write_text(yaml.safe_dump({"organizations": [
        {"organ_id": A, "organ_name": "x", "certificates": {"pinned_sha256": ["nope"]}}]}))
    with pytest.raises(ConnectorError):
        load_directory(directory)
