"""``connector pki init``: creates the demo PKI, refuses to overwrite without --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main


def test_pki_init_and_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "pki"
    assert main(["pki", "init", str(target)]) == 0
    out = capsys.readouterr().out
    assert "000.00.31.H12" in out and "000.00.32.H12" in out
    assert (target / "trust" / "root.pem").exists()
    assert (target / "crl" / "intermediate.crl").exists()
    assert main(["pki", "init", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["pki", "init", str(target), "--force"]) == 0
