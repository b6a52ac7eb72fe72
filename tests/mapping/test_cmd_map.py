"""The command line: connector map / connector mappings check."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main

from .conftest import DIRECTORY_FILE, EXAMPLES, MAPPINGS, SPOOL

BASE = ["--dir", str(MAPPINGS), "--directory", str(DIRECTORY_FILE)]


def test_map_prints_a_valid_package(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    rc = main(["map", "--mapping", "legacy-xml", *BASE, "--attachments-dir", str(SPOOL),
               str(EXAMPLES / "legacy-xml" / "03-attachments.xml")])
    out = capsysbinary.readouterr().out
    assert rc == 0 and b"<edXML:CodeNotation>KH-SNV</edXML:CodeNotation>" in out


def test_map_refuses_secret(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["map", "--mapping", "qlvb-json", *BASE,
               str(EXAMPLES / "qlvb-json" / "08-secret.json")])
    err = capsys.readouterr().err
    assert rc == 1 and "secret_document" in err and "Tối mật" in err


def test_map_reverse_and_command(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    rc = main(["map", "--mapping", "qlvb-json", *BASE, "--reverse", "--files-dir",
               str(tmp_path), str(EXAMPLES / "qlvb-json" / "03-attachments.edxml")])
    out = capsysbinary.readouterr().out
    assert rc == 0 and b'"so": "45"' in out
    assert (tmp_path / "45-KH-SNV.signed.pdf").read_bytes().startswith(b"%PDF-")
    rc = main(["map", "--mapping", "qlvb-json", *BASE, "--command", "--own", "SNV",
               str(EXAMPLES / "qlvb-json" / "20-command-accepted.json")])
    assert rc == 0 and b"<edXML:StatusCode>03</edXML:StatusCode>" in capsysbinary.readouterr().out


def test_mappings_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "check", *BASE]) == 0
    assert "OK  " in capsys.readouterr().out
    (tmp_path / "good.yaml").write_text((MAPPINGS / "qlvb-json.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "bad.yaml").write_text("mapping: 1\nname: bad\nrecord: {syntax: csv, id: x}\n",
                                       "utf-8")
    rc = main(["mappings", "check", "--dir", str(tmp_path), "--directory", str(DIRECTORY_FILE)])
    out = capsys.readouterr().out
    assert rc == 1 and "bad.yaml:3" in out and "ERROR" in out


def test_map_reverse_reads_what_the_receive_level_accepts(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from tests.edxml.test_cmd_validate import _deviant

    path = tmp_path / "from-hub.edxml"
    path.write_bytes(_deviant())
    rc = main(["map", "--mapping", "qlvb-json", *BASE, "--reverse", str(path)])
    captured = capsysbinary.readouterr()
    assert rc == 0 and b'"so":' in captured.out
    assert b"warning:" in captured.err and b"HubNote" in captured.err
    # What receiving needs is still refused, with the reason.
    path.write_bytes(_deviant().replace(b"<edXML:DocumentId>", b"<edXML:Other>", 1)
                     .replace(b"</edXML:DocumentId>", b"</edXML:Other>", 1))
    rc = main(["map", "--mapping", "qlvb-json", *BASE, "--reverse", str(path)])
    err = capsysbinary.readouterr().err
    assert rc == 1 and b"would be refused on receipt" in err and b"DocumentId" in err
    assert main(["map", "--mapping", "qlvb-json", *BASE, "--reverse", str(tmp_path)]) == 2
    assert b"is a folder" in capsysbinary.readouterr().err


@pytest.mark.parametrize("reverse", [False, True])
def test_map_names_what_is_not_a_file(
    reverse: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    fifo = tmp_path / "record.json"
    os.mkfifo(fifo)
    cases = {
        str(tmp_path): "is a folder, not a file",
        str(fifo): "is a named pipe (FIFO), not a regular file",
        "/dev/zero": "is a device, not a regular file",
    }
    for name, message in cases.items():
        argv = ["map", "--mapping", "qlvb-json", *BASE, *(["--reverse"] if reverse else []), name]
        assert main(argv) == 2  # returns at once: a FIFO or /dev/zero is never read
        assert f"{name}: {message}" in capsys.readouterr().err


def test_mapping_commands_take_their_folders_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # In the container (WORKDIR /var/lib/edoc-connector) there is no ./mappings: like every
    # sub-command, these read the configuration ($CONNECTOR_CONFIG or --config).
    from .conftest import ROOT

    config = str(ROOT / "config" / "connector.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_CONFIG", config)
    assert main(["mappings", "check"]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert f"OK  {DIRECTORY_FILE}" in out and "mapping 'qlvb-json'" in out
    monkeypatch.delenv("CONNECTOR_CONFIG")
    assert main(["mappings", "check", "--config", config]) == 0
    capsysbinary.readouterr()
    record = EXAMPLES / "qlvb-json" / "01-ordinary.json"
    assert main(["map", "--mapping", "qlvb-json", "--config", config, str(record)]) == 0
    assert b"<edXML" in capsysbinary.readouterr().out
    assert main(["mappings", "check"]) == 2  # neither a configuration nor ./mappings
