"""``connector messages``: list, show (timeline, recipients, last error, raw export), retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli import main
from connector.store.api import ErrorInfo, NewInbound, NewOutbound, PackageFacts
from connector.store.sqlite import SqliteStore
from connector.store.states import InboundState, OutboundState, PackageKind
from connector.trust.atrest import PayloadCipher, generate_key

A, B = "000.00.31.H12", "000.00.32.H12"
DOC_ID = f"{A},2025/07/01,12/SNV-VP"

CONFIG = """\
agency: {{organ_id: "{a}", name: "Sở Nội vụ tỉnh Cà Mau (demo)"}}
local: {{type: spool, spool: {{root: spool}}}}
hub: {{endpoint: "http://127.0.0.1:8780", systemid: vxp.a, secret_env: HUB_SECRET_AGENCY_A}}
store: {{path: state/store.sqlite, at_rest_key_file: at-rest.keys}}
mappings: {{dir: mappings, default: qlvb-json}}
trust: {{seal: {{key: seal.key, cert: seal.pem}}, trust_dir: trust}}
"""


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A configuration, its at-rest key and a store with one package in each situation."""
    (tmp_path / "at-rest.keys").write_text(f"k1 {generate_key()}\n")
    config = tmp_path / "connector.yaml"
    config.write_text(CONFIG.format(a=A), encoding="utf-8")
    cipher = PayloadCipher.from_sources(key_file=tmp_path / "at-rest.keys")
    store = SqliteStore(tmp_path / "state" / "store.sqlite", cipher)
    facts = PackageFacts(document_id=DOC_ID, sender=A, recipients=(B,), priority=3, code="12/SNV")

    def ready(local_id: str) -> int:
        new = NewOutbound(
            local_id, PackageKind.EDOC, OutboundState.READY, raw=b"<edXML/>", facts=facts
        )
        return store.add_outbound(new).package.id

    ids = {"sent": ready("rec-sent"), "failed": ready("rec-failed")}
    store.mark_sent(ids["sent"], "hub-1")
    store.apply_status(ids["sent"], B, "01")
    store.mark_failed(ids["failed"], ErrorInfo("hub_refused", "unknown recipient", "send"))
    inbound = store.add_inbound(
        NewInbound(
            "hub-9", PackageKind.EDOC, b"<edXML>in</edXML>", PackageFacts(document_id="x", sender=B)
        )
    )
    ids["inbound"] = inbound.package.id
    store.transition(ids["inbound"], InboundState.VERIFIED)
    store.close()
    return config, ids


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["messages", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_filters_and_json(
    deployment: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = deployment
    code, out, _ = run(capsys, "--config", str(config), "list")
    assert code == 0
    assert "STATE" in out and "rec-failed" not in out  # documents show their DocumentId
    assert out.count(DOC_ID) == 2 and "[hub_refused]" in out and "VERIFIED" in out

    code, out, _ = run(capsys, "--config", str(config), "list", "--state", "failed")
    assert code == 0
    assert len(out.strip().splitlines()) == 2 and "FAILED" in out

    code, out, _ = run(capsys, "--config", str(config), "list", "--direction", "in", "--json")
    [line] = out.strip().splitlines()
    assert json.loads(line)["id"] == ids["inbound"]

    code, _, err = run(capsys, "--config", str(config), "list", "--state", "bogus")
    assert code == 2 and "not a" in err


def test_show_timeline_recipients_and_error(
    deployment: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = deployment
    store_path = config.parent / "state" / "store.sqlite"
    code, out, _ = run(capsys, "--store", str(store_path), "show", str(ids["sent"]))
    assert code == 0
    assert f"Package #{ids['sent']}: outbound edoc, SENT" in out
    assert "hub-1" in out and "Hỏa tốc" in out
    assert B in out and "ARRIVED" in out and "status 01" in out
    assert "Timeline" in out and "ready" in out and "sent" in out and "status_01" in out

    code, out, _ = run(capsys, "--store", str(store_path), "show", str(ids["failed"]))
    assert "last error" in out and "hub_refused (stage send): unknown recipient" in out

    code, out, _ = run(capsys, "--store", str(store_path), "show", str(ids["sent"]), "--json")
    document = json.loads(out)
    assert [e["event"] for e in document["events"]] == ["ready", "sent", "status_01"]
    assert document["recipients"][0]["state"] == "ARRIVED"

    code, _, err = run(capsys, "--store", str(store_path), "show", "999")
    assert code == 1 and "no package #999" in err


def test_show_exports_the_raw_package(
    deployment: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, ids = deployment
    target = tmp_path / "archived.edxml"
    code, _, _ = run(
        capsys, "--config", str(config), "show", str(ids["inbound"]), "--raw", str(target)
    )
    assert code == 0 and target.read_bytes() == b"<edXML>in</edXML>"
    store_path = config.parent / "state" / "store.sqlite"
    code, _, err = run(capsys, "--store", str(store_path), "show", "1", "--raw", str(target))
    assert code == 1 and "--raw needs --config" in err


def test_retry_one_and_all_failed(
    deployment: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = deployment
    code, _, err = run(capsys, "--config", str(config), "retry", str(ids["sent"]))
    assert code == 1 and "only FAILED" in err

    code, out, _ = run(capsys, "--config", str(config), "retry", str(ids["failed"]))
    assert code == 0 and f"#{ids['failed']}: FAILED → READY" in out

    code, out, _ = run(capsys, "--config", str(config), "retry", "--all-failed")
    assert code == 0 and "no FAILED packages" in out

    code, out, _ = run(capsys, "--config", str(config), "show", str(ids["failed"]))
    assert "READY" in out and "retry requested by operator" in out


def test_missing_store_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--store", str(tmp_path / "none.sqlite"), "list")
    assert code == 1 and "no tracking store" in err
    assert not (tmp_path / "none.sqlite").exists()
