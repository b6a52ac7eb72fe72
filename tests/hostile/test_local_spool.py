"""Hostile input on the spool entry point: records agency software (or an intruder on the
share) drops, and names a remote sender chooses for the files delivered into the spool.

Invariants for every case of every family: the verdict (read, or refused with its reason
code) is the expected one; nothing blocks (a FIFO is never opened); a refused record is
refused once and never read again; the good record behind it comes out in the same fetch;
nothing is read whole past the limit; nothing is written outside the spool; received names
fit the file system and the delivery list keeps the original beside the file written.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.errors import PermanentError, UnavailableError
from connector.local import spool as spool_module
from connector.local import spool_sink
from connector.local.base import DeliveryKind, LocalDelivery, RecordLimits
from connector.local.filenames import DELIVERY_RESERVED, fit_name
from connector.local.spool import REASON_SUFFIX, SpoolFolder

pytestmark = pytest.mark.timeout(60)

LIMIT = 4096
OLD = time.time() - 3600


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SpoolFolder]:
    folder = SpoolFolder(tmp_path / "spool", settle_seconds=0.0, poll_interval=0.01,
                         limits=RecordLimits(max_record_bytes=LIMIT))
    yield folder
    folder.close()


def _age(path: Path) -> None:
    os.utime(path, (OLD, OLD), follow_symlinks=False)


def _good(spool: SpoolFolder, name: str = "zz-good.json") -> Path:
    path = spool.outbound / name
    path.write_bytes(b'{"id": "good"}')
    _age(path)
    os.utime(path, (OLD + 10, OLD + 10))  # after every poison one
    return path


def _fetch_all(spool: SpoolFolder) -> dict[str, object]:
    return {item.record.record_id: item for item in spool.fetch(100, timeout=0)}


def _files_outside(root: Path, before: set[Path]) -> set[Path]:
    return {p for p in root.parent.rglob("*") if not p.is_relative_to(root)} - before


# ---------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("size", [0, 1, LIMIT - 1, LIMIT, LIMIT + 1, 10 * LIMIT])
def test_record_size_at_and_around_the_limit(spool: SpoolFolder, size: int) -> None:
    path = spool.outbound / "sized.json"
    path.write_bytes(b"x" * size)
    _age(path)
    _good(spool)
    items = _fetch_all(spool)
    assert set(items) == {"sized", "zz-good"}
    record = items["sized"].record  # type: ignore[attr-defined]
    if size > LIMIT:
        assert record.refusal is not None and record.refusal.reason == "record_too_large"
        assert record.body == b""  # never read whole
        assert str(LIMIT) in record.refusal.message
    else:
        assert record.refusal is None and len(record.body) == size


def test_a_record_that_grows_while_read_is_refused_not_read_whole(
        spool: SpoolFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    path = spool.outbound / "growing.json"
    path.write_bytes(b"x" * 10)
    _age(path)
    real_fstat = os.fstat

    def small_fstat(fd: int) -> os.stat_result:  # the size seen before it grew
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 10, *info[7:]))

    path.write_bytes(b"x" * (LIMIT * 3))
    _age(path)
    monkeypatch.setattr(os, "fstat", small_fstat)
    [item] = spool.fetch(1, timeout=0)
    assert item.record.refusal is not None
    assert item.record.refusal.reason == "record_too_large"


# ---------------------------------------------------------------------------- special files
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


def _link_to_file(path: Path) -> None:
    target = path.parent / ".secret-target"
    target.write_bytes(b'{"id": "via-link"}')
    path.symlink_to(target)


def _link_to_fifo(path: Path) -> None:
    target = path.parent / ".fifo-target"
    os.mkfifo(target)
    path.symlink_to(target)


def _dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.json")


def _socket(path: Path) -> None:
    import socket
    import tempfile

    short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"  # AF_UNIX paths are short
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(short))
    finally:
        sock.close()
    os.rename(short, path)
    short.parent.rmdir()


SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": _fifo,
    "device": _device,
    "link-to-file": _link_to_file,
    "link-to-fifo": _link_to_fifo,
    "dangling-link": _dangling_link,
    "socket": _socket,
    "folder": lambda path: path.mkdir(),
}


@pytest.mark.parametrize("where", ["top", "mapping-folder"])
@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_files_are_refused_once_without_blocking(
        spool: SpoolFolder, kind: str, where: str) -> None:
    folder = spool.outbound if where == "top" else spool.outbound / "qlvb-json"
    folder.mkdir(exist_ok=True)
    if kind == "folder" and where == "top":
        pytest.skip("a top-level folder is a mapping folder by design")
    path = folder / f"special-{kind}.json"
    SPECIAL[kind](path)
    _age(path)
    _good(spool)
    started = time.monotonic()
    items = _fetch_all(spool)
    assert time.monotonic() - started < 5  # never blocked on a FIFO
    assert set(items) == {f"special-{kind}", "zz-good"}
    poison = items[f"special-{kind}"]
    refusal = poison.record.refusal  # type: ignore[attr-defined]
    assert refusal is not None and refusal.reason == "record_not_regular_file"
    assert "regular file" in refusal.message
    poison.dead_letter(refusal)  # type: ignore[attr-defined]
    items["zz-good"].ack()  # type: ignore[attr-defined]
    failed = spool.failed / path.relative_to(spool.root)
    assert os.path.lexists(failed) and not os.path.lexists(path)
    reason = json.loads(failed.with_name(failed.name + REASON_SUFFIX).read_text("utf-8"))
    assert reason["reason"] == "record_not_regular_file"
    assert spool.fetch(10, timeout=0) == []  # refused once: never read again


# ---------------------------------------------------------------------------- dead letters
def test_a_long_record_name_still_gets_its_reason_beside_it(spool: SpoolFolder) -> None:
    name = "ư" * 120 + ".json"  # 245 bytes: the reason file's name would be 257
    assert len(name.encode()) <= 255 < len((name + REASON_SUFFIX).encode())
    path = spool.outbound / name
    path.write_bytes(b"{")
    _age(path)
    [item] = spool.fetch(1, timeout=0)
    item.dead_letter(PermanentError("broken", reason="record_malformed"))
    failed = spool.failed / path.relative_to(spool.root)
    assert failed.exists() and not path.exists()
    [reason_file] = [p for p in failed.parent.iterdir() if p.name.endswith(REASON_SUFFIX)]
    assert len(reason_file.name.encode()) <= 255
    assert json.loads(reason_file.read_text("utf-8"))["record_id"] == name[:-5]


@pytest.mark.parametrize("code", [errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL])
def test_a_reason_file_that_cannot_be_written_never_loops(
        spool: SpoolFolder, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    path = spool.outbound / "cannot-move.json"
    path.write_bytes(b"{")
    _age(path)
    good = _good(spool)

    def refuse(target: Path, data: bytes) -> None:
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr(spool_module, "_write_atomically", refuse)
    items = _fetch_all(spool)
    items["cannot-move"].dead_letter(  # type: ignore[attr-defined]
        PermanentError("broken", reason="record_malformed"))  # no UnavailableError
    assert path.exists()  # could not be moved: it stays, set aside
    monkeypatch.undo()
    items["zz-good"].release()  # type: ignore[attr-defined]
    assert [i.record.record_id for i in spool.fetch(10, timeout=0)] == ["zz-good"]
    assert good.exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO, errno.EACCES])
def test_a_real_outage_of_the_folder_still_waits(
        spool: SpoolFolder, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    path = spool.outbound / "x.json"
    path.write_bytes(b"{")
    _age(path)
    [item] = spool.fetch(1, timeout=0)

    def refuse(target: Path, data: bytes) -> None:
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr(spool_module, "_write_atomically", refuse)
    with pytest.raises(UnavailableError):
        item.dead_letter(PermanentError("broken", reason="record_malformed"))


# ---------------------------------------------------------------------------- received names
VIETNAMESE_TITLE = ("Quyết định phê duyệt kế hoạch triển khai ứng dụng công nghệ thông tin "
                    "trong hoạt động của cơ quan nhà nước giai đoạn hai nghìn không trăm hai "
                    "mươi sáu đến hai nghìn không trăm ba mươi của Ủy ban nhân dân tỉnh")
HOSTILE_NAMES = [
    VIETNAMESE_TITLE[:201] + ".pdf",  # 201 characters, far over 255 bytes
    "a" * 255 + ".pdf",
    "đ" * 300,
    "x" * 251 + ".json",
    *DELIVERY_RESERVED,
    "RECORD.JSON",
    "Delivery.Json",
    "CON",
    "nul.txt",
    "com1.pdf",
    ".",
    "..",
    "",
    ".hidden",
    "../../../../etc/cron.d/evil",
    "C:\\Windows\\system32\\evil.dll",
    "tab\there.pdf",
    "new\nline.pdf",
    "escape\x1b[31m.pdf",
    "nul\x00byte.pdf",
    "bidi-\u202egpj.exe",
    "zero\u200bwidth.pdf",
    "bom\ufeff.pdf",
    "trailing-dot.",
    "trailing-space ",
    "colon:star*q?.pdf",
    "báo cáo.pdf",
    "Báo Cáo.pdf",
    "ba\u0301o ca\u0301o.pdf",  # the same name decomposed (NFD)
    "\udcff-surrogate.pdf",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_a_hostile_name_is_delivered_under_a_name_that_fits(
        spool: SpoolFolder, name: str) -> None:
    before = {p for p in spool.root.parent.rglob("*") if not p.is_relative_to(spool.root)}
    files = [("ok.pdf", b"%PDF-first"), (name, b"hostile payload"), ("record.json", b"twin")]
    spool.deliver(LocalDelivery("in-1", DeliveryKind.DOCUMENT, b'{"r": 1}',
                                "application/json", files))
    [folder] = list(spool.inbound.iterdir())
    manifest = json.loads((folder / "delivery.json").read_text("utf-8"))
    assert (folder / "record.json").read_bytes() == b'{"r": 1}'  # never overwritten
    listed = manifest["attachments"]
    assert [entry["name"] for entry in listed] == [n for n, _ in files]  # originals kept
    written = [entry["file"] for entry in listed]
    assert len({w.casefold() for w in written}) == len(written)
    for entry, (_, data) in zip(listed, files, strict=True):
        file = folder / entry["file"]
        assert file.parent == folder and file.read_bytes() == data  # points at the real file
        assert 0 < len(entry["file"].encode("utf-8")) <= 255
        assert entry["file"].casefold() not in {r.casefold() for r in DELIVERY_RESERVED}
        assert not entry["file"].startswith(".")
        assert all(ord(c) >= 32 and c not in "\u202e\u200b\ufeff/\\" for c in entry["file"])
    assert _files_outside(spool.root, before) == set()


def test_two_long_names_stay_apart(spool: SpoolFolder) -> None:
    first, second = VIETNAMESE_TITLE + " 1.pdf", VIETNAMESE_TITLE + " 2.pdf"
    spool.deliver(LocalDelivery("in-2", DeliveryKind.DOCUMENT, b"{}", "application/json",
                                [(first, b"1"), (second, b"2")]))
    [folder] = list(spool.inbound.iterdir())
    listed = json.loads((folder / "delivery.json").read_text("utf-8"))["attachments"]
    assert [(folder / e["file"]).read_bytes() for e in listed] == [b"1", b"2"]
    assert all(e["file"].endswith(".pdf") for e in listed)


def test_a_name_the_file_system_refuses_fails_that_delivery_only(
        spool: SpoolFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_sink, "fit_names",
                        lambda names, **_: ["z" * 300 for _ in names])
    with pytest.raises(PermanentError) as refused:
        spool.deliver(LocalDelivery("in-3", DeliveryKind.DOCUMENT, b"{}", "application/json",
                                    [("x.pdf", b"1")]))
    assert refused.value.reason == "delivery_unwritable"
    assert list(spool.inbound.iterdir()) == []  # no half-written folder left
    monkeypatch.undo()
    spool.deliver(LocalDelivery("in-4", DeliveryKind.DOCUMENT, b"{}", "application/json",
                                [("x.pdf", b"1")]))  # the next delivery is not held up
    assert [p.name for p in spool.inbound.iterdir()] == ["in-4"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_fitted_names_are_stable(name: str) -> None:
    once = fit_name(name)
    assert fit_name(once) == once  # the mapping's name and the spool's name are one file


# ---------------------------------------------------------------------------- record names
RECORD_NAMES: dict[str, bytes] = {
    "longest": ("ư" * 125 + ".json").encode(),  # 255 bytes: the longest name there is
    "control": b"rec\x1b[31m\x07\n.json",
    "bidi": "rec\u202enosj.json".encode(),
    "not-utf8": b"rec-\xff\xfe.json",
    "latin1": "d\xe9cision.json".encode("latin-1"),
    "leading-dash": b"-rf.json",
    "spaces": b"  spaced  .json",
    "reserved": b"CON.json",
    "upper-suffix": b"UPPER.JSON",
}


@pytest.mark.parametrize("label", sorted(RECORD_NAMES))
def test_odd_record_names_are_read_or_refused_once(spool: SpoolFolder, label: str) -> None:
    raw = RECORD_NAMES[label]
    if len(raw) > 255:
        pytest.skip("longer than the file system allows: cannot exist")
    path = os.fsencode(spool.outbound) + b"/" + raw
    with open(path, "wb") as handle:
        handle.write(b'{"id": "x"}')
    os.utime(path, (OLD, OLD))
    _good(spool)
    items = spool.fetch(10, timeout=0)
    assert len(items) == 2 and items[-1].record.record_id == "zz-good"
    record = items[0].record
    record.record_id.encode("utf-8")  # always encodable: ids reach the store and events
    json.dumps({"id": record.record_id, **record.headers}).encode("utf-8")
    if record.refusal is not None:
        assert label in ("not-utf8", "latin1")
        assert record.refusal.reason == "record_name_invalid"
        items[0].dead_letter(record.refusal)
        assert not os.path.lexists(path)
    else:
        items[0].ack()
    items[1].release()
    assert [i.record.record_id for i in spool.fetch(10, timeout=0)] == ["zz-good"]


def test_a_spool_outage_is_reported_as_the_spool_not_the_broker() -> None:
    from connector.metrics import ConnectorMetrics

    metrics = ConnectorMetrics()
    metrics.local_side = "spool"
    metrics.set_component_up("broker", False)  # what the inbound stage reports today
    assert metrics.components() == {"spool": False}


def test_a_300_mb_record_costs_no_memory(tmp_path: Path) -> None:
    import tracemalloc

    folder = SpoolFolder(tmp_path / "big", settle_seconds=0.0)  # the default limits
    try:
        path = folder.outbound / "huge.json"
        with open(path, "wb") as handle:
            handle.truncate(300 * 1024 * 1024)  # sparse: no disk used
        _age(path)
        tracemalloc.start()
        try:
            [item] = folder.fetch(1, timeout=0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert item.record.refusal is not None
        assert item.record.refusal.reason == "record_too_large"
        assert peak < 1024 * 1024  # the bound is checked before a byte is read
    finally:
        folder.close()
