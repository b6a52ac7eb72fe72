"""The spool folder adapter: atomic pick-up, settlement, dead letters, idempotent delivery."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.config_schema import SpoolConfig
from connector.errors import ConfigurationError, PermanentError, UnavailableError
from connector.local.base import (
    DeliveryKind,
    Intake,
    LocalDelivery,
    LocalEvent,
    RecordKind,
    Sink,
)
from connector.local.spool import SpoolFolder, safe_name

OLD = time.time() - 3600  # an mtime well past any settle time


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SpoolFolder]:
    folder = SpoolFolder(tmp_path / "spool", settle_seconds=0.0, poll_interval=0.01)
    yield folder
    folder.close()


def drop(path: Path, data: bytes = b'{"so": "12"}', mtime: float | None = OLD) -> Path:
    """Write the way agency software should: a temporary name, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    if mtime is not None:
        os.utime(temporary, (mtime, mtime))
    os.replace(temporary, path)
    return path


def test_implements_the_local_contract(spool: SpoolFolder) -> None:
    intake: Intake = spool
    sink: Sink = spool
    assert intake is spool and sink is spool


def test_records_and_commands_with_ids_mappings_and_types(spool: SpoolFolder) -> None:
    drop(spool.outbound / "doc-1.json", mtime=OLD)
    drop(spool.outbound / "legacy-xml" / "CV-2025-7.xml", b"<vb/>", mtime=OLD + 1)
    drop(spool.commands / "accept-42.json", b'{"status": "03"}', mtime=OLD + 2)
    items = spool.fetch(10, timeout=0)
    records = [item.record for item in items]
    assert [(r.record_id, r.mapping, r.kind, r.content_type) for r in records] == [
        ("doc-1", None, RecordKind.RECORD, "application/json"),
        ("CV-2025-7", "legacy-xml", RecordKind.RECORD, "application/xml"),
        ("accept-42", None, RecordKind.COMMAND, "application/json"),
    ]
    assert records[1].body == b"<vb/>"
    assert records[1].headers["x-spool-file"] == "outbound/legacy-xml/CV-2025-7.xml"
    assert records[0].source == str(spool.outbound / "doc-1.json")


def test_half_written_and_foreign_files_are_never_picked(spool: SpoolFolder) -> None:
    for name in (
        "a.json.tmp",
        "b.json.part",
        "c.partial",
        ".d.json",
        "e.json~",
        "f.pdf",
        "g.json.reason.json",
        "notes.txt",
    ):
        (spool.outbound / name).write_bytes(b"{")
        os.utime(spool.outbound / name, (OLD, OLD))
    (spool.outbound / ".hidden-mapping").mkdir()
    drop(spool.outbound / ".hidden-mapping" / "h.json")
    assert spool.fetch(10, timeout=0) == []


def test_the_settle_time_protects_writers_that_cannot_rename(tmp_path: Path) -> None:
    spool = SpoolFolder(tmp_path / "spool", settle_seconds=30.0)
    path = spool.outbound / "in-place.json"
    path.write_bytes(b'{"half": ')
    assert spool.fetch(10, timeout=0) == []
    os.utime(path, (OLD, OLD))
    assert [i.record.record_id for i in spool.fetch(10, timeout=0)] == ["in-place"]
    spool.close()


def test_concurrent_writer_never_exposes_a_partial_record(spool: SpoolFolder) -> None:
    body = json.dumps({"text": "x" * 200_000}).encode()
    stop = threading.Event()

    def writer() -> None:
        for n in range(40):
            path = spool.outbound / f"rec-{n}.json"
            temporary = path.with_name(path.name + ".part")
            with open(temporary, "wb") as handle:
                for start in range(0, len(body), 20_000):  # slowly, in pieces
                    handle.write(body[start : start + 20_000])
                    handle.flush()
            os.replace(temporary, path)
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen: dict[str, bytes] = {}
    while not stop.is_set() or len(seen) < 40:
        for item in spool.fetch(5, timeout=0.05):
            seen[item.record.record_id] = item.record.body
            item.ack()
    thread.join()
    assert len(seen) == 40
    assert all(value == body for value in seen.values())


def test_items_in_flight_are_not_handed_out_twice(spool: SpoolFolder) -> None:
    drop(spool.outbound / "doc-1.json")
    [item] = spool.fetch(10, timeout=0)
    assert spool.fetch(10, timeout=0) == []
    item.release()
    [again] = spool.fetch(10, timeout=0)
    assert again.record == item.record
    assert (spool.outbound / "doc-1.json").exists()  # release leaves it in place


def test_ack_removes_the_record(spool: SpoolFolder) -> None:
    path = drop(spool.outbound / "qlvb-json" / "doc-1.json")
    [item] = spool.fetch(10, timeout=0)
    assert path.exists()  # until the store has it, the record stays
    item.ack()
    assert not path.exists()
    item.ack()  # settling twice is harmless
    assert spool.fetch(10, timeout=0) == []


def test_ack_keeps_a_record_replaced_in_the_meantime(spool: SpoolFolder) -> None:
    path = drop(spool.outbound / "doc-1.json", b'{"v": 1}')
    [item] = spool.fetch(10, timeout=0)
    drop(path, b'{"v": 2}', mtime=OLD + 10)
    item.ack()
    assert path.read_bytes() == b'{"v": 2}'
    assert [i.record.body for i in spool.fetch(10, timeout=0)] == [b'{"v": 2}']


def test_ack_after_an_operator_removed_the_file(spool: SpoolFolder) -> None:
    path = drop(spool.outbound / "doc-1.json")
    [item] = spool.fetch(10, timeout=0)
    path.unlink()
    item.ack()


def test_dead_letter_writes_the_reason_and_replay_moves_it_back(spool: SpoolFolder) -> None:
    path = drop(spool.outbound / "qlvb-json" / "secret-1.json", '{"do_mat": "Mật"}'.encode())
    [item] = spool.fetch(10, timeout=0)
    error = PermanentError(
        "field do_mat = 'Mật': documents classified secret are never sent",
        reason="secret_document",
        stage="classify",
    )
    item.dead_letter(error)
    failed = spool.failed / "outbound" / "qlvb-json" / "secret-1.json"
    assert not path.exists()
    assert failed.read_bytes() == '{"do_mat": "Mật"}'.encode()
    reason = json.loads((failed.parent / "secret-1.json.reason.json").read_text("utf-8"))
    assert reason["reason"] == "secret_document"
    assert reason["stage"] == "classify"
    assert reason["kind"] == "permanent"
    assert reason["record_id"] == "secret-1"
    assert "never sent" in reason["message"]
    assert reason["time"].endswith("+07:00")
    assert "mv " in reason["replay"]
    assert spool.fetch(10, timeout=0) == []
    assert [p.name for p in failed.parent.iterdir() if p.name.startswith(".")] == []

    back = spool.replay("outbound/qlvb-json/secret-1.json")
    assert back == path and path.exists()
    assert not failed.exists() and not (failed.parent / "secret-1.json.reason.json").exists()
    [replayed] = spool.fetch(10, timeout=0)
    assert replayed.record.record_id == "secret-1"
    assert replayed.record.mapping == "qlvb-json"


def delivery(delivery_id: str = "000.00.31.H12,2025/07/01,12/SNV-VP") -> LocalDelivery:
    return LocalDelivery(
        delivery_id=delivery_id,
        kind=DeliveryKind.DOCUMENT,
        body=b'{"so": "12"}',
        content_type="application/json",
        attachments=(
            ("12-SNV-VP.signed.pdf", b"%PDF-1.7 main"),
            ("../../etc/passwd", b"not a traversal"),
            ("record.json", b"an attachment named like the record"),
            ("12-SNV-VP.signed.pdf", b"%PDF-1.7 a second file of that name"),
        ),
        headers={"x-status-code": "", "x-business-doc-type": "new"},
    )


def test_deliver_writes_one_complete_folder(spool: SpoolFolder) -> None:
    item = delivery()
    spool.deliver(item)
    [folder] = list(spool.inbound.iterdir())
    assert folder.name == safe_name(item.delivery_id)
    assert "/" not in folder.name and "," not in folder.name
    manifest = json.loads((folder / "delivery.json").read_text("utf-8"))
    assert manifest["delivery_id"] == item.delivery_id
    assert manifest["kind"] == "document" and manifest["record"] == "record.json"
    assert (folder / "record.json").read_bytes() == item.body
    files = {entry["name"]: entry["file"] for entry in manifest["attachments"][:3]}
    assert files == {
        "12-SNV-VP.signed.pdf": "12-SNV-VP.signed.pdf",
        "../../etc/passwd": "passwd",
        "record.json": "record-2.json",
    }
    assert manifest["attachments"][3]["file"] == "12-SNV-VP.signed-2.pdf"
    assert (folder / "passwd").read_bytes() == b"not a traversal"
    assert (folder / "12-SNV-VP.signed-2.pdf").read_bytes().endswith(b"second file of that name")
    assert manifest["headers"]["x-business-doc-type"] == "new"


def test_deliver_is_idempotent_even_after_the_agency_took_it(spool: SpoolFolder) -> None:
    item = delivery()
    spool.deliver(item)
    spool.deliver(item)
    assert len(list(spool.inbound.iterdir())) == 1
    for folder in spool.inbound.iterdir():
        shutil.rmtree(folder)  # the agency consumed it
    spool.deliver(item)
    assert list(spool.inbound.iterdir()) == []
    spool.deliver(delivery("another-id"))
    assert [p.name for p in spool.inbound.iterdir()] == ["another-id"]


def test_deliver_recovers_from_a_crash_at_each_step(spool: SpoolFolder) -> None:
    name = safe_name("crash-1")
    ledger = spool.root / ".state" / "delivered" / name
    partial = spool.inbound / f".{name}.part"

    # 1. Crashed while writing: the partial folder is invisible and is rewritten.
    partial.mkdir()
    (partial / "record.json").write_bytes(b"{trunc")
    spool.deliver(delivery("crash-1"))
    assert (spool.inbound / name / "record.json").read_bytes() == b'{"so": "12"}'
    assert not partial.exists()
    assert ledger.read_text().strip() == "done"

    # 2. Crashed after the folder was complete but before the rename: finish it.
    shutil.rmtree(spool.inbound / name)
    ledger.write_text("prepared\n")
    partial.mkdir()
    (partial / "record.json").write_bytes(b'{"complete": true}')
    spool.deliver(delivery("crash-1"))
    assert (spool.inbound / name / "record.json").read_bytes() == b'{"complete": true}'

    # 3. Crashed after the rename, and the agency already took the folder: no second copy.
    shutil.rmtree(spool.inbound / name)
    ledger.write_text("prepared\n")
    spool.deliver(delivery("crash-1"))
    assert list(spool.inbound.iterdir()) == []
    assert ledger.read_text().strip() == "done"


def test_status_deliveries_and_xml_records(spool: SpoolFolder) -> None:
    spool.deliver(LocalDelivery("status-1", DeliveryKind.STATUS, b"<status/>", "application/xml"))
    folder = spool.inbound / "status-1"
    assert (folder / "record.xml").read_bytes() == b"<status/>"
    assert json.loads((folder / "delivery.json").read_text())["kind"] == "status"


def test_events_are_one_json_file_each_in_time_order(spool: SpoolFolder) -> None:
    spool.emit(LocalEvent("outbound.accepted", {"record_id": "doc-1"}, event_id="e-1"))
    spool.emit(LocalEvent("outbound.sent", {"record_id": "doc-1", "hub_id": "h-9"}))
    spool.emit(LocalEvent("status.01", {"document_id": "000.00.31.H12,2025/07/01,12/SNV-VP"}))
    files = sorted(spool.events.iterdir())
    assert len(files) == 3 and all(f.suffix == ".json" for f in files)
    events = [json.loads(f.read_text("utf-8")) for f in files]
    assert [e["routing_key"] for e in events] == ["outbound.accepted", "outbound.sent", "status.01"]
    assert events[0]["event_id"] == "e-1" and events[1]["event_id"]
    assert events[1]["body"] == {"record_id": "doc-1", "hub_id": "h-9"}
    assert "e-1" in files[0].name


def test_one_connector_per_spool(tmp_path: Path) -> None:
    first = SpoolFolder(tmp_path / "spool")
    with pytest.raises(ConfigurationError) as caught:
        SpoolFolder(tmp_path / "spool")
    assert caught.value.reason == "spool_locked"
    first.close()
    SpoolFolder(tmp_path / "spool").close()


def test_a_missing_folder_is_unavailable(spool: SpoolFolder) -> None:
    shutil.rmtree(spool.outbound)
    with pytest.raises(UnavailableError) as caught:
        spool.fetch(10, timeout=0)
    assert caught.value.reason == "spool_unavailable"
    assert "outbound" in caught.value.message


def test_fetch_waits_up_to_the_timeout(spool: SpoolFolder) -> None:
    started = time.monotonic()
    assert spool.fetch(10, timeout=0.1) == []
    assert time.monotonic() - started >= 0.1

    def late_drop() -> None:
        time.sleep(0.05)
        drop(spool.outbound / "late.json")

    thread = threading.Thread(target=late_drop)
    thread.start()
    items = spool.fetch(10, timeout=5)
    thread.join()
    assert [i.record.record_id for i in items] == ["late"]


def test_layout_from_configuration(tmp_path: Path) -> None:
    config = SpoolConfig.model_validate(
        {"root": "spool", "dirs": {"failed": "rejected"}, "settle_seconds": 0},
        context={"base_dir": tmp_path},
    )
    spool = SpoolFolder.from_config(config)
    assert spool.failed == tmp_path / "spool" / "rejected" and spool.failed.is_dir()
    assert spool.settle_seconds == 0
    spool.close()
    with pytest.raises(ConfigurationError, match="not nested"):
        SpoolFolder(tmp_path / "other", failed="outbound/failed")


def test_the_delivery_ledger_can_be_pruned(spool: SpoolFolder) -> None:
    spool.deliver(delivery("old-1"))
    spool.deliver(delivery("new-1"))
    ledger = spool.root / ".state" / "delivered"
    os.utime(ledger / "old-1", (OLD - 90 * 86400, OLD - 90 * 86400))
    assert spool.prune_ledger(older_than_days=30) == 1
    assert sorted(p.name for p in ledger.iterdir()) == ["new-1"]
