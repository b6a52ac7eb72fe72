"""``connector messages``: list, show (timeline, recipients, last error, raw export), retry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from connector.cli import main
from connector.store.api import ErrorInfo, NewInbound, NewOutbound, PackageFacts
from connector.store.sqlite import SqliteStore
from connector.store.states import InboundState, OutboundState, PackageKind
from connector.trust.atrest import PayloadCipher, generate_key

A, B, C = "000.00.31.H12", "000.00.32.H12", "000.00.33.H12"
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


@pytest.fixture
def aged(deployment: tuple[Path, dict[str, int]]) -> tuple[Path, dict[str, int]]:
    """Besides the deployment: a document SENT to B and C five hours ago; C never answered."""
    config, ids = deployment
    cipher = PayloadCipher.from_sources(key_file=config.parent / "at-rest.keys")
    five_hours_ago = time.time() - 5 * 3600
    store = SqliteStore(config.parent / "state" / "store.sqlite", cipher, clock=lambda: five_hours_ago)
    facts = PackageFacts(
        document_id=f"{A},2025/07/02,77/QĐ-SNV", sender=A, recipients=(B, C), code="77/QĐ-SNV"
    )
    new = NewOutbound("rec-77", PackageKind.EDOC, OutboundState.READY, raw=b"<edXML/>", facts=facts)
    ids["old"] = store.add_outbound(new).package.id
    store.mark_sent(ids["old"], "hub-77")
    store.close()
    store = SqliteStore(config.parent / "state" / "store.sqlite", cipher)
    store.apply_status(ids["old"], B, "01")  # B confirmed arrival now; C is still SENT
    store.close()
    return config, ids


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f"{A},2025/07/02,77/QĐ-SNV", "old"),  # DocumentId
        ("rec-77", "old"),  # the local record id
        ("hub-77", "old"),  # the hub's id
        ("77/QĐ", "old"),  # part of CodeNumber/Notation
        ("hub-9", "inbound"),  # an inbound package by its hub id
    ],
)
def test_find_by_any_identifier(
    aged: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str], text: str, key: str
) -> None:
    config, ids = aged
    code, out, err = run(capsys, "find", text, "--config", str(config), "--json")
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [ids[key]]


def test_find_nothing_says_what_was_searched(
    aged: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = aged
    code, _, err = run(capsys, "--config", str(config), "find", "no-such-thing")
    assert code == 1 and "nothing found for 'no-such-thing'" in err


def test_list_recipients_stuck_in_a_state(
    aged: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, ids = aged
    args = ("list", "--recipient-state", "SENT", "--older-than", "4h", "--config", str(config))
    code, out, _ = run(capsys, *args, "--json")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == [ids["old"]]
    code, out, _ = run(capsys, *args)
    assert f"→ {C} SENT for 5.0 h" in out and f"{B} ARRIVED" in out
    for extra, expected in (
        (("--organ", C), [ids["old"]]),
        (("--organ", B), []),  # B is past SENT
        (("--older-than", "6h"), []),
    ):
        code, out, _ = run(capsys, *args, *extra, "--json")
        assert [json.loads(line)["id"] for line in out.splitlines()] == expected, extra
    code, out, _ = run(capsys, "list", "--organ", B, "--store", str(config.parent / "state" / "store.sqlite"), "--json")
    assert {json.loads(line)["id"] for line in out.splitlines()} == set(ids.values())
    with pytest.raises(SystemExit) as usage:
        run(capsys, "list", "--older-than", "soon", "--config", str(config))
    assert usage.value.code == 2 and "not a duration" in capsys.readouterr().err


def test_config_before_or_after_the_action(
    aged: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, ids = aged
    monkeypatch.chdir(config.parent.parent)  # no config/connector.yaml here
    before = run(capsys, "--config", str(config), "show", str(ids["old"]), "--json")
    after = run(capsys, "show", str(ids["old"]), "--json", "--config", str(config))
    assert before[0] == after[0] == 0 and before[1] == after[1]
    code, _, err = run(
        capsys, "--store", "x.sqlite", "show", "1", "--config", str(config)
    )
    assert code == 1 and "not both" in err


def test_recipient_backlog_per_state(aged: tuple[Path, dict[str, int]]) -> None:
    config, _ = aged
    store = SqliteStore(config.parent / "state" / "store.sqlite", None)
    try:
        backlog = {b.state.value: b for b in store.recipient_backlog()}
    finally:
        store.close()
    assert backlog["SENT"].count == 1 and time.time() - backlog["SENT"].oldest_since > 4.9 * 3600
    assert backlog["ARRIVED"].count == 2 and backlog["PENDING"].count == 1
