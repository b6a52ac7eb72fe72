from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigurationError
from connector.hub.config import load, validate


def test_load_resolves_relative_paths_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.secret").write_text("secret-b\n")
    monkeypatch.setenv("HUB_TEST_SECRET_A", "secret-a")
    file = tmp_path / "hub.yaml"
    file.write_text(
        "db: state/hub.sqlite\n"
        "accounts:\n"
        "  - {systemid: a, organ_id: 000.00.31.H12, secret_env: HUB_TEST_SECRET_A}\n"
        "  - {systemid: b, organ_id: 000.00.32.H12, secret_file: b.secret}\n"
        "faults: {error_rate: 0.1}\n"
    )
    config = load(file, {"port": 0, "faults": {"latency_ms": 5}})
    assert config.db == tmp_path / "state" / "hub.sqlite"
    assert config.port == 0
    assert config.faults.error_rate == 0.1 and config.faults.latency_ms == 5
    assert [a.resolve_secret().reveal() for a in config.accounts] == [b"secret-a", b"secret-b"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    file = tmp_path / "hub.yaml"
    file.write_text(
        "port: 99999\n"
        "acounts: []\n"
        "accounts:\n"
        "  - {systemid: a, organ_id: X, secret: inline-secret}\n"
        "  - {systemid: b, organ_id: Y}\n"
        "faults: {error_rate: 2}\n"
    )
    with pytest.raises(ConfigurationError) as bad:
        load(file)
    text = str(bad.value)
    for expected in ("port", "acounts", "accounts.0.secret", "accounts.1", "faults.error_rate"):
        assert expected in text
    assert "inline-secret" not in text
    assert "never written in the config" in text


def test_duplicate_accounts_and_bad_yaml(tmp_path: Path) -> None:
    account = {"systemid": "a", "organ_id": "X", "secret_env": "E"}
    with pytest.raises(ConfigurationError, match="appears twice"):
        validate({"accounts": [account, account]})
    file = tmp_path / "hub.yaml"
    file.write_text("accounts: [\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load(file)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load(tmp_path / "absent.yaml")


def test_shipped_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "hub.yaml"
    monkeypatch.setenv("HUB_SECRET_AGENCY_A", "a" * 32)
    monkeypatch.setenv("HUB_SECRET_AGENCY_B", "b" * 32)
    config = load(example, {"port": 0, "db": str(tmp_path / "hub.sqlite")})
    assert {a.systemid for a in config.accounts} == {"vxp.agency-a", "vxp.agency-b"}
    assert {a.organ_id for a in config.accounts} <= {e.code for e in config.directory}
    assert all(account.resolve_secret() for account in config.accounts)
