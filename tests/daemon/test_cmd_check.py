"""``connector check --config FILE``: exit 0 when the connector could start, else 1 with every
reason (what, where, why)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from connector.daemon import cmd_check
from tests.e2e.harness import A_ID, CONFIG_A, ROOT, World, derive_config
from tests.e2e.inprocess import daemon_pki, world  # noqa: F401

ENV_NAMES = (
    "CONNECTOR_VAR",
    "CONNECTOR_PKI",
    "CONNECTOR_HUB_URL",
    "HUB_SECRET_AGENCY_A",
    "HUB_SECRET_AGENCY_B",
)


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:  # noqa: F811
    for name in ENV_NAMES:
        monkeypatch.setenv(name, world.env[name])
    return world


def _check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cmd_check.run(argparse.Namespace(config=str(config)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shipped_configuration_checks_ok(env: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _check(CONFIG_A, capsys)
    assert code == 0, err
    assert f"agency: {A_ID} (Sở Nội vụ tỉnh Cà Mau (demo))" in out
    assert out.rstrip().endswith(f"{CONFIG_A}: OK")


def test_missing_secret_is_named_with_its_key_and_line(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_SECRET_AGENCY_A")
    code, _, err = _check(CONFIG_A, capsys)
    assert code == 1
    assert "hub.secret_env" in err and "HUB_SECRET_AGENCY_A" in err
    line = next(
        n
        for n, text in enumerate(CONFIG_A.read_text("utf-8").splitlines(), 1)
        if "secret_env:" in text
    )
    assert f":{line}" in err


def test_every_missing_file_is_reported_at_once(
    env: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_PKI", str(env.tmp / "gone" / "pki"))
    code, _, err = _check(CONFIG_A, capsys)
    assert code == 1
    for key in (
        "trust.trust_dir",
        "trust.seal.key",
        "trust.seal.cert",
        "encryption.decryption_key.key",
    ):
        assert key in err, f"{key} not reported:\n{err}"
    assert "connector pki init" in err


def test_invalid_configuration_says_where_and_what(
    env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = derive_config(CONFIG_A, env.tmp / "broken.yaml", {"retry": {"max_attemps": 3}})
    code, _, err = _check(broken, capsys)
    assert code == 1
    assert "configuration is not valid" in err
    assert "retry.max_attemps" in err and "max_attempts" in err


def test_unreadable_key_cannot_start(env: World, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = env.tmp / "seal.key"
    marker = "PRIVATE " + "KEY-----"  # split so no committed file looks like a real key
    garbage.write_text(f"-----BEGIN {marker}\nnot a key\n-----END {marker}\n")
    broken = derive_config(
        CONFIG_A, env.tmp / "badkey.yaml", {"trust": {"seal": {"key": str(garbage)}}}
    )
    code, _, err = _check(broken, capsys)
    assert code == 1
    assert "cannot start" in err and "seal.key" in err


def test_command_line_exit_codes(env: World) -> None:
    def check(config: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector", "check", "--config", str(config)],
            env=env.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = check(CONFIG_A)
    assert good.returncode == 0, good.stderr
    bad = check(env.tmp / "missing.yaml")
    assert bad.returncode == 1 and "missing.yaml" in bad.stderr
