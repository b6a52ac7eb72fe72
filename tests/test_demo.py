"""``make demo`` runs the whole flow and exits 0 (in a temporary folder, not the developer's var/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    env = dict(os.environ, CONNECTOR_DEMO_VAR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "-m", "connector.demo"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=380)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "refused: secret_document" in out
    assert "3 status 01 received" in out
    assert "status 03 received" in out
    assert "demo finished: every step happened as expected" in out
    # Afterwards the demo configurations pass `connector check` with nothing exported by
    # hand: the hub secrets are files under var/ that the configurations point at.
    var = tmp_path / "var"
    check_env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_SECRET_")}
    check_env.update(CONNECTOR_VAR=str(var), CONNECTOR_PKI=str(var / "pki"))
    for config in ("config/connector.yaml", "config/connector-b.yaml"):
        checked = subprocess.run([sys.executable, "-m", "connector", "check", "--config", config],
                                 cwd=ROOT, env=check_env, capture_output=True, text=True,
                                 timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.rstrip().endswith(f"{config}: OK")
