"""``connector validate`` and ``connector inspect`` as a person and a machine use them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connector.cli import main
from connector.edxml import build_package
from tests.edxml.factories import edoc
from tests.samples import sample_params, sample_paths


def test_validate_accepts_all_samples(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sample_paths()
    if not paths:
        pytest.skip("national axis samples absent")
    assert main(["validate", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert out.count(": OK: would be received") == len(paths)


def test_validate_reports_problems_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.edxml"
    good.write_bytes(build_package(edoc()))
    bad = tmp_path / "bad.edxml"
    bad.write_bytes(build_package(edoc()).replace(b"<edXML:Priority>1<", b"<edXML:Priority>9<"))
    refused = tmp_path / "refused.edxml"
    refused.write_bytes(re.sub(rb"<edXML:DocumentId>[^<]*</edXML:DocumentId>", b"",
                               build_package(edoc()), count=1))
    # Receive level: a Priority outside QCVN's list is received with a warning.
    assert main(["validate", str(good), str(bad)]) == 0
    out = capsys.readouterr().out
    assert "good.edxml: OK" in out and "bad.edxml: OK: would be received" in out
    assert "warning:" in out and "Priority" in out
    assert main(["validate", str(good), str(refused)]) == 1
    out = capsys.readouterr().out
    assert "refused.edxml: REFUSED" in out and "DocumentId" in out
    assert main(["validate", "--strict", str(good), str(bad)]) == 1
    assert "bad.edxml: INVALID" in capsys.readouterr().out
    assert main(["validate", "--json", str(good), str(bad), str(refused)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in report] == [True, True, False]
    assert report[1]["warnings"][0]["line"] and report[2]["problems"][0]["line"]


def test_validate_usage_errors(tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "missing.edxml")]) == 2
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2


@pytest.mark.parametrize("path", sample_params("edoc_update.edxml"))
def test_inspect_prints_summary(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kind:        edoc" in out and "update" in out and "cid:209" in out


def test_inspect_status_and_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.edxml.factories import status

    path = tmp_path / "s.edxml"
    path.write_bytes(build_package(status()))
    assert main(["inspect", str(path)]) == 0
    assert "01 Đã đến" in capsys.readouterr().out
    path.write_bytes(b"<edXML")
    assert main(["inspect", str(path)]) == 1
