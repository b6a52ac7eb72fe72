"""A → hub → B over the spool: one poison record of each family between two good ones.

Agency A's spool receives, for every family, an ordinary record, then the poison one, then
an urgent record: a FIFO, a symbolic link and a device named like records, an oversize
record, a duplicated classification key, JSON nested past any parser, a text value over the
limit, too many files, a FIFO named as claim-check file, and a legacy-XML classification
carried in an attribute. Both good records of each family reach the hub, the urgent one
first; every poison record is refused once with its reason (moved to ``failed/`` with its
reason file, one ``outbound.refused`` event) and nothing is left in ``outbound/``. B receives
a document whose attachments are named with a 201-character Vietnamese title (over 255
bytes) and ``record.json``: delivered under names that fit, the originals kept in
``delivery.json``, and A learns B's 01 for every document (nothing behind it is blocked).
"""

from __future__ import annotations

import base64
import collections
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import A_ID, EXAMPLES, FAST, World, drop, today
from tests.e2e_amqp.harness import RecordFactory, signed_main_pdf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

LIMITS = {"max_record_bytes": 1024 * 1024, "max_attachments": 3, "max_text_chars": 5000}
A_CHANGES = {**FAST, "local": {"limits": LIMITS}}
LONG_TITLE = ("Quyết định phê duyệt kế hoạch triển khai ứng dụng công nghệ thông tin trong hoạt "
              "động của cơ quan nhà nước giai đoạn hai nghìn không trăm hai mươi sáu đến hai "
              "nghìn không trăm ba mươi của Ủy ban nhân dân tỉnh Cà Mau")[:197] + ".pdf"


@dataclass(frozen=True)
class Poison:
    name: str  # the file under outbound/ (its stem is the record id)
    make: Callable[[Path], None]  # creates it at the given path
    reason: str
    mapping: str | None = None


def _writer(data: bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        drop(path.parent, path.name, data)

    return write


def _device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))


def _families(factory: RecordFactory, spool: Path) -> list[Poison]:
    duplicated = factory.make(950).body.replace(
        '"do_mat": "Thường"'.encode(), '"do_mat": "Tối mật", "do_mat": "Thường"'.encode())
    legacy = (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_text("utf-8")
    hidden = legacy.replace("<DoMat>BT</DoMat>", '<DoMat Ma="Mat"/>').encode()
    pdf = {"ten_tep": "pl.pdf", "loai_tep": "application/pdf",
           "noi_dung_base64": factory.main_b64}  # fmt: skip
    os.mkfifo(spool / "pipe.pdf")
    families = [
        Poison("POISON-fifo.json", os.mkfifo, "record_not_regular_file"),
        Poison("POISON-link.json", lambda p: p.symlink_to(spool / "pipe.pdf"),
               "record_not_regular_file"),
        Poison("POISON-oversize.json", _writer(b'{"x": "' + b"a" * (1024 * 1024) + b'"}'),
               "record_too_large"),
        Poison("POISON-duplicate.json", _writer(duplicated), "record_malformed"),
        Poison("POISON-deep.json", _writer(b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
               "record_malformed"),
        Poison("POISON-long-text.json", _writer(factory.make(951, trich_yeu="Ư" * 5001).body),
               "record_invalid"),
        Poison("POISON-many-files.json", _writer(factory.make(952, tep_dinh_kem=[pdf] * 4).body),
               "record_invalid"),
        Poison("POISON-fifo-claim-check.json", _writer(factory.make(953, tep_dinh_kem=[
            {"ten_tep": "pl.pdf", "loai_tep": "application/pdf", "tep_spool": "pipe.pdf"}]).body),
               "record_invalid"),
        Poison("POISON-attribute.xml", _writer(hidden), "classification_unknown", "legacy-xml"),
    ]
    try:
        _device(spool / ".probe")
        (spool / ".probe").unlink()
        families.append(Poison("POISON-device.json", _device, "record_not_regular_file"))
    except PermissionError:
        pass  # no CAP_MKNOD here: the hostile unit tests say so
    return families


def test_one_poison_of_each_family_between_two_good_ones(world: World) -> None:
    world.start_hub()
    world.derive(world.a, A_CHANGES)
    world.derive(world.b)
    outbound = world.a.spool / "outbound"
    outbound.mkdir(parents=True, exist_ok=True)
    factory = RecordFactory(f"spool-{today():%m%d}", signed_main_pdf(world.signer))
    families = _families(factory, world.a.spool)
    annex = base64.b64encode((EXAMPLES / "spool" / "46-KH-SNV-lich.pdf").read_bytes()).decode()
    named = [{"ten_tep": name, "loai_tep": "application/pdf", "noi_dung_base64": annex}
             for name in (LONG_TITLE, "record.json")]
    assert len(LONG_TITLE.encode()) > 255
    pairs = {}
    for index, poison in enumerate(families):
        extra = {"tep_dinh_kem": named} if index == 0 else {}
        low, urgent = factory.make(2 * index, 0, **extra), factory.make(2 * index + 1, 2)
        pairs[poison.name] = (low, urgent)
        drop(outbound, f"{low.record_id}.json", low.body)
        folder = outbound / poison.mapping if poison.mapping else outbound
        folder.mkdir(exist_ok=True)
        poison.make(folder / poison.name)
        drop(outbound, f"{urgent.record_id}.json", urgent.body)
    good = [record for pair in pairs.values() for record in pair]
    # The hub is busy (503 to every upload) until every good record is prepared, so the order
    # at the hub shows the sender's urgency order, not the order preparation finished in.
    hub = world.hub
    assert hub is not None
    hub.set_faults(error_rate=1.0, error_status=503, calls=["sendEdoc"])
    world.a.start()
    world.b.start()

    world.wait(f"{len(families)} records refused",
               lambda: len(world.a.events("outbound.refused")) >= len(families), timeout=120)
    world.wait(f"{len(good)} documents ready",
               lambda: len(world.a.events("outbound.ready")) >= len(good), timeout=180)
    hub.clear_faults()
    world.wait(f"{len(good)} documents at the hub",
               lambda: len(world.hub_packages(sender=A_ID)) >= len(good), timeout=180)

    order = [p.document_id for p in world.hub_packages(sender=A_ID)]
    assert sorted(order) == sorted(r.document_id for r in good)
    for name, (low, urgent) in pairs.items():
        assert order.index(urgent.document_id) < order.index(low.document_id), name
    by_id = collections.Counter(e["local_id"] for e in world.a.events("outbound.refused"))
    assert by_id == collections.Counter(Path(p.name).stem for p in families), by_id
    reasons = {e["local_id"]: e["reason"] for e in world.a.events("outbound.refused")}
    assert reasons == {Path(p.name).stem: p.reason for p in families}
    leftovers = [p for p in outbound.rglob("*") if not p.is_dir()]
    assert leftovers == [], leftovers
    for poison in families:
        failed = world.a.spool / "failed" / "outbound" / (poison.mapping or "") / poison.name
        assert os.path.lexists(failed), poison.name
        reason = json.loads(failed.with_name(poison.name + ".reason.json").read_text("utf-8"))
        assert reason["reason"] == poison.reason

    # B: the document with hostile attachment names is delivered, under names that fit.
    first_low = pairs[families[0].name][0]
    world.wait("B delivers every document",
               lambda: len(world.b.deliveries("document")) >= len(good), timeout=180)
    [delivery] = [d for d in world.b.deliveries("document")
                  if d.document_id == first_low.document_id]
    record = delivery.record()  # still the record: no attachment took its name
    files = {item["ten_tep"]: item["tep_spool"] for item in record["tep_dinh_kem"]}
    assert {LONG_TITLE, "record.json"} <= set(files)  # the record keeps the original names
    for original, file in files.items():  # and points at the files really written
        assert len(file.encode()) <= 255 and (delivery.folder / file).is_file(), original
    assert files["record.json"] != "record.json"
    written = {item["file"] for item in delivery.manifest["attachments"]}
    assert set(files.values()) <= written
    failed_at_b = [p for p in world.b.events() if p.get("event") == "inbound.failed"]
    assert failed_at_b == []
