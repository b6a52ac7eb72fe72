from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigurationError
from connector.interconnect import Secret


def test_secret_never_shows_its_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUB_SECRET_TEST", "top-secret-value")
    secret = Secret.from_env("HUB_SECRET_TEST")
    assert secret.reveal() == b"top-secret-value"
    assert "top-secret" not in repr(secret) and "top-secret" not in str(secret)
    assert "HUB_SECRET_TEST" in secret.source
    file = tmp_path / "secret"
    file.write_text("top-secret-value\n")
    assert Secret.from_file(file) == secret  # trailing newline dropped


def test_missing_secrets_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUB_SECRET_ABSENT", raising=False)
    with pytest.raises(ConfigurationError, match="HUB_SECRET_ABSENT"):
        Secret.from_env("HUB_SECRET_ABSENT")
    with pytest.raises(ConfigurationError, match="cannot read"):
        Secret.from_file(tmp_path / "nope")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigurationError, match="empty"):
        Secret.from_file(tmp_path / "empty")
