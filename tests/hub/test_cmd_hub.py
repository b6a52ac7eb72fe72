"""`connector hub` as a process: starts from flags, prints its URL, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from connector.interconnect import Secret, VxpClient, VxpSettings
from tests.hub.harness import A, B, edoc_bytes

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "hub", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_hub_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {"HUB_T_A": "secret-a-for-test", "HUB_T_B": "secret-b-for-test"}
    process = _start(
        "--port",
        "0",
        "--db",
        str(tmp_path / "hub.sqlite"),
        "--account",
        f"vxp.a={A}:HUB_T_A",
        "--account",
        f"vxp.b={B}:HUB_T_B",
        "--fault",
        "latency_ms=1",
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("hub listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        settings = VxpSettings(endpoint=url, systemid="vxp.a", secret=Secret(env["HUB_T_A"]))
        with VxpClient(settings) as client:
            assert client.send(edoc_bytes(A, (B,)), message_type="edoc", sender=A)
            assert {a.organ_id for a in client.directory()} == {A, B}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "hub.sqlite").exists()


def test_hub_command_reports_configuration_problems(tmp_path: Path) -> None:
    process = _start("--port", "0", "--account", f"vxp.a={A}:HUB_T_UNSET", env={})
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "HUB_T_UNSET" in err
    process = _start("--account", "nonsense", env={})
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 1 and "SYSTEMID=ORGANID:SECRET_ENV" in err
