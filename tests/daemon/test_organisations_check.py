"""``connector check`` on the shipped province configuration (config/connector-province.yaml):
it passes with the province's demo PKI and secrets in place, lists every organisation, its
hub account and certificates, and names the organisation of any broken part."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

import pytest

from connector.daemon import cmd_check
from connector.trust.atrest import generate_key
from connector.trust.pki import PROVINCE_AGENCIES, DemoPki, create_demo_pki
from tests.e2e.harness import ROOT

CONFIG = ROOT / "config" / "connector-province.yaml"


@pytest.fixture(scope="module")
def province_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return create_demo_pki(Path(tmp_path_factory.mktemp("province")) / "pki", PROVINCE_AGENCIES)


@pytest.fixture
def var(tmp_path: Path, province_pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files the province configuration names, as a deployment would hold them."""
    var = tmp_path / "var"
    for name in ("province/org-33.hub.secret", "province/org-34.hub.secret",
                 "demo/agency-a/hub.secret"):
        path = var / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(24) + "\n")
        path.chmod(0o600)
    keys = var / "province" / "at-rest.keys"
    keys.write_text(f"k1 {generate_key()}\n")
    keys.chmod(0o600)
    monkeypatch.setenv("CONNECTOR_VAR", str(var))
    monkeypatch.setenv("CONNECTOR_PKI", str(province_pki.directory))
    monkeypatch.delenv("CONNECTOR_HUB_URL", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    return var


def _check(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cmd_check.run(argparse.Namespace(config=str(CONFIG), online=False))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_province_configuration_checks_ok(var: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _check(capsys)
    assert code == 0, err
    assert "organisations: 000.00.31.H12 (" in out and "000.00.34.H12 (" in out
    assert "hub 000.00.33.H12: account vxp.org-33" in out
    for organ_id in ("000.00.33.H12", "000.00.34.H12"):
        assert f"certificate seal {organ_id}: " in out
        assert f"certificate encryption {organ_id}: " in out
    assert out.rstrip().endswith(f"{CONFIG}: OK")


def test_a_broken_part_is_named_with_its_organisation(
        var: Path, province_pki: DemoPki, capsys: pytest.CaptureFixture[str]) -> None:
    province_pki.agency("000.00.33.H12").seal.key.rename(var / "moved.key")
    (var / "province" / "org-34.hub.secret").unlink()
    try:
        code, _, err = _check(capsys)
    finally:
        (var / "moved.key").rename(province_pki.agency("000.00.33.H12").seal.key)
    assert code != 0
    assert "organisations[1].seal" in err
    assert "organisations[2].hub.secret_file" in err
