"""``connector validate`` and ``connector inspect`` as a person and a machine use them."""

from __future__ import annotations

import json
import os
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


def _deviant() -> bytes:
    """A package a hub could deliver: TraceHeader without OrganId, an over-long OrganName,
    a Priority outside QCVN's list, an unknown element."""
    data = build_package(edoc()).decode()
    data = data.replace("<edXML:Priority>1<", "<edXML:Priority>7<")
    data = re.sub(r"<edXML:OrganName>[^<]*</edXML:OrganName>",
                  "<edXML:OrganName>" + "Ủy ban " * 40 + "</edXML:OrganName>", data, count=1)
    data = data.replace(
        "</edXML:MessageHeader>",
        "<edXML:HubNote>x</edXML:HubNote></edXML:MessageHeader>"
        "<edXML:TraceHeaderList><edXML:TraceHeader>"
        "<edXML:Timestamp>2026/11/20 08:00:00</edXML:Timestamp></edXML:TraceHeader>"
        "</edXML:TraceHeaderList>",
        1,
    ) if "<edXML:TraceHeaderList>" not in data else data.replace(
        "<edXML:TraceHeaderList>",
        "<edXML:TraceHeaderList><edXML:TraceHeader>"
        "<edXML:Timestamp>2026/11/20 08:00:00</edXML:Timestamp></edXML:TraceHeader>",
        1,
    ).replace("</edXML:MessageHeader>", "<edXML:HubNote>x</edXML:HubNote></edXML:MessageHeader>")
    return data.encode()


def test_validate_receives_a_deviant_package_with_every_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "from-hub.edxml"
    path.write_bytes(_deviant())
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK: would be received" in out
    for element in ("Priority", "OrganName", "HubNote", "OrganId"):
        assert element in out, element
    # --strict lists every problem of the file at once (not only the first).
    assert main(["validate", "--strict", str(path)]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(problems) >= 4, out
    for element in ("Priority", "OrganName", "HubNote", "OrganId"):
        assert element in out, element
    assert main(["validate", "--strict", "--json", str(path)]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["level"] == "strict" and len(report["problems"]) >= 4
    assert all(p["line"] for p in report["problems"])


def test_inspect_shows_the_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "from-hub.edxml"
    path.write_bytes(_deviant())
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kind:        edoc" in out and "warnings:" in out and "HubNote" in out


@pytest.mark.parametrize("command", ["validate", "inspect"])
def test_exact_messages_for_what_is_not_a_file(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe.edxml"
    os.mkfifo(fifo)
    cases = {
        str(tmp_path): "is a folder, not a file",
        str(fifo): "is a named pipe (FIFO), not a regular file",
        "/dev/null": "is a device, not a regular file",
        str(tmp_path / "missing.edxml"): "no such file",
    }
    for name, message in cases.items():
        assert main([command, name]) == 2  # returns at once: a FIFO is never opened
        err = capsys.readouterr().err
        assert f"{name}: {message}" in err, err
        assert "no such file" not in err or message == "no such file"
