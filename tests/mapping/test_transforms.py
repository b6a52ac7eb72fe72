"""Named transforms and their inverses: dates in Vietnam time, code tables, lengths."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.mapping.transforms import (
    BUILTIN_TABLES,
    Transform,
    TransformSpecError,
    compile_transform,
    fold,
)
from connector.timeutil import VN_TZ


def _t(spec: str) -> Transform:
    return compile_transform(spec, BUILTIN_TABLES)


def test_fold() -> None:
    assert fold("  Thượng_KHẨN ") == "thuong khan"
    assert fold("Đồng-ý") == fold("dong y") == fold("ÐONG Y")


def test_date_patterns_both_ways() -> None:
    t = _t("date:dd/MM/yyyy")
    assert t.forward("02/06/2025") == dt.date(2025, 6, 2)
    assert t.reverse(dt.date(2025, 6, 2)) == "02/06/2025"
    with pytest.raises(ValueError, match="dd/MM/yyyy"):
        t.forward("2025-06-02")
    ts = _t("date:dd/MM/yyyy HH:mm:ss")
    value = ts.forward("03/06/2025 16:40:00")
    assert value == dt.datetime(2025, 6, 3, 16, 40, tzinfo=VN_TZ)
    assert ts.reverse(value) == "03/06/2025 16:40:00"


def test_iso_converts_offsets_to_vietnam_time() -> None:
    t = _t("date:iso")
    assert t.forward("2025-06-02T20:30:00Z") == dt.datetime(2025, 6, 3, 3, 30, tzinfo=VN_TZ)
    assert t.forward("2025-06-02") == dt.date(2025, 6, 2)
    assert t.reverse(dt.datetime(2025, 6, 3, 3, 30, tzinfo=VN_TZ)) == "2025-06-03T03:30:00+07:00"


def test_epoch() -> None:
    t = _t("date:epoch")
    value = t.forward(1748880000)  # 2025-06-02T16:00:00Z
    assert value == dt.datetime(2025, 6, 2, 23, 0, tzinfo=VN_TZ)
    assert t.reverse(value) == 1748880000
    assert _t("date:epoch_ms").forward("1748880000000") == value


@pytest.mark.parametrize(("word", "code"), [
    ("Khẩn", "1"), ("KHAN", "1"), ("khan", "1"), ("Thượng khẩn", "2"), ("thuong_khan", "2"),
    ("THUONG KHAN", "2"), ("Hỏa tốc", "3"), ("Hoả tốc", "3"), ("hoa-toc", "3"), ("3", "3"),
    ("Hỏa tốc hẹn giờ", "4"), ("Thường", "0"), ("", "0"),
])
def test_urgency_words(word: str, code: str) -> None:
    assert _t("table:priority").forward(word) == code


def test_tables_reverse_to_first_spelling_and_refuse_unknown() -> None:
    t = _t("table:document_kind")
    assert t.forward("QĐ") == "Quyết định" and t.forward("to trinh") == "Tờ trình"
    assert t.reverse("Quyết định") == "Quyết định"
    extended = BUILTIN_TABLES["priority"].extended({"1": ["K1"]})
    assert extended.local("1") == "K1" and extended.lookup("khẩn") == "1"
    with pytest.raises(ValueError, match="not in code table 'priority'"):
        _t("table:priority").forward("rất gấp")


def test_max_length_and_trim() -> None:
    assert _t("trim").forward("  a \n b ") == "a b"
    with pytest.raises(ValueError, match="over the limit of 3"):
        _t("max_length:3").forward("abcd")


@pytest.mark.parametrize("spec", ["nope", "date", "date:dd/MM", "date:dd/MM/yyyy Q",
                                  "table:none", "max_length:x", "trim:1"])
def test_bad_transform_specs(spec: str) -> None:
    with pytest.raises(TransformSpecError):
        _t(spec)
