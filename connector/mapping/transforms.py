"""Named transforms between local values and edXML values, each with its inverse.

A mapping field lists transforms by name; they run in order from the record to edXML and in
reverse order (each inverted) from edXML to the record:

* ``trim``: strip and collapse inner whitespace (inverse: identity);
* ``upper`` / ``lower``: change case (inverse: identity);
* ``date:PATTERN``: a local date/time text in a pattern of ``yyyy MM dd HH mm ss`` tokens
  (``date:dd/MM/yyyy``, ``date:yyyy-MM-dd HH:mm:ss``), or ``date:iso`` (ISO 8601, an offset
  is converted to Vietnam time), ``date:epoch`` / ``date:epoch_ms`` (Unix time); the result
  is a Vietnam-time date or datetime and the inverse formats it back the same way;
* ``table:NAME``: a code table (built-in below, extended or added in the mapping's
  ``tables:``); local spellings are matched after ``fold`` (no case, no diacritics, ``_-./``
  as spaces); the inverse gives the table's first spelling;
* ``max_length:N``: refuse a text longer than N characters (inverse: identity).

Errors in a *value* raise ``ValueError`` (the caller turns them into a record error naming
the field); errors in a *transform name* raise ``TransformSpecError`` at load time. This
module must not know about records or packages.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.timeutil import VN_TZ

_FOLD_SEPARATORS = re.compile(r"[\s_\-./,;:()]+")
# Đ and its look-alikes (Ð is often typed for Đ) have no decomposition to strip.
_D_LIKE = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ɖ": "d", "Ɖ": "D"})


def fold(text: str) -> str:
    """Compare-friendly form: no diacritics, no case, ``đ`` as ``d``, separators as spaces."""
    decomposed = unicodedata.normalize("NFD", text.translate(_D_LIKE))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _FOLD_SEPARATORS.sub(" ", stripped.casefold()).strip()


# ------------------------------------------------------------------------- code tables
@dataclass(frozen=True)
class CodeTable:
    """Wire value -> local spellings; the first spelling is what the reverse direction writes."""

    name: str
    entries: tuple[tuple[str, tuple[str, ...]], ...]

    def lookup(self, value: Any) -> str:
        text = _as_text(value)
        key = fold(text)
        for wire, spellings in self.entries:
            if key == fold(wire) or any(key == fold(s) for s in spellings):
                return wire
        known = ", ".join(repr(s[0] if s else w) for w, s in self.entries[:12])
        raise ValueError(f"value {text!r} is not in code table {self.name!r} (known: {known}"
                         f"{', ...' if len(self.entries) > 12 else ''}); add it to the "
                         f"mapping's tables.{self.name}")

    def local(self, wire: Any) -> str:
        text = _as_text(wire)
        for candidate, spellings in self.entries:
            if candidate == text or fold(candidate) == fold(text):
                return spellings[0] if spellings else candidate
        return text

    def extended(self, extra: Mapping[str, Sequence[str]]) -> CodeTable:
        """A table with ``extra`` spellings first (they win on reverse), then these."""
        merged: dict[str, list[str]] = {}
        for wire, spellings in extra.items():
            merged.setdefault(str(wire), []).extend(str(s) for s in spellings)
        for wire, spellings in self.entries:
            merged.setdefault(wire, []).extend(spellings)
        return CodeTable(self.name, tuple((w, tuple(s)) for w, s in merged.items()))


def _table(name: str, rows: Mapping[str, Sequence[str]]) -> CodeTable:
    return CodeTable(name, tuple((w, tuple(s)) for w, s in rows.items()))


BUILTIN_TABLES: dict[str, CodeTable] = {
    t.name: t
    for t in (
        _table("priority", {
            "0": ["Thường", "binh thuong", "normal", "none", ""],
            "1": ["Khẩn", "khan", "urgent", "K"],
            "2": ["Thượng khẩn", "thuong khan", "very urgent", "TK"],
            "3": ["Hỏa tốc", "hoả tốc", "hoa toc", "flash", "HT"],
            "4": ["Hỏa tốc hẹn giờ", "hoa toc hen gio", "flash scheduled"],
        }),
        _table("steering_type", {
            "1": ["Không chỉ đạo", "khong", "no", "false", "0", ""],
            "2": ["Chỉ đạo", "co", "yes", "true", "steering"],
            "3": ["Báo cáo chỉ đạo", "bao cao", "steering report", "report"],
        }),
        _table("document_type", {
            "1": ["Hành chính", "van ban hanh chinh", "administrative", ""],
            "2": ["Quy phạm pháp luật", "qppl", "van ban quy pham phap luat", "legal"],
        }),
        # Kinds of administrative documents and their abbreviations (Nghị định 30/2020).
        _table("document_kind", {
            "Công văn": ["Công văn", "CV", "official letter"],
            "Quyết định": ["Quyết định", "QĐ", "decision"],
            "Nghị quyết": ["Nghị quyết", "NQ", "resolution"],
            "Chỉ thị": ["Chỉ thị", "CT", "directive"],
            "Quy chế": ["Quy chế", "QC"],
            "Quy định": ["Quy định", "QyĐ"],
            "Thông báo": ["Thông báo", "TB", "notice"],
            "Hướng dẫn": ["Hướng dẫn", "HD", "guidance"],
            "Chương trình": ["Chương trình", "CTr"],
            "Kế hoạch": ["Kế hoạch", "KH", "plan"],
            "Phương án": ["Phương án", "PA"],
            "Đề án": ["Đề án", "ĐA"],
            "Dự án": ["Dự án", "DA"],
            "Báo cáo": ["Báo cáo", "BC", "report"],
            "Biên bản": ["Biên bản", "BB", "minutes"],
            "Tờ trình": ["Tờ trình", "TTr", "submission"],
            "Hợp đồng": ["Hợp đồng", "HĐ", "contract"],
            "Công điện": ["Công điện", "CĐ", "telegram"],
            "Giấy mời": ["Giấy mời", "GM", "invitation"],
            "Giấy giới thiệu": ["Giấy giới thiệu", "GGT"],
            "Giấy ủy quyền": ["Giấy ủy quyền", "GUQ"],
            "Phiếu gửi": ["Phiếu gửi", "PG"],
            "Phiếu chuyển": ["Phiếu chuyển", "PC"],
            "Thông cáo": ["Thông cáo", "TC"],
        }),
        _table("business_doc_type", {
            "0": ["Mới", "moi", "new", ""],
            "1": ["Thu hồi", "thu hoi", "revoke", "recall"],
            "2": ["Cập nhật", "cap nhat", "update"],
            "3": ["Thay thế", "thay the", "replace"],
        }),
        _table("receiver_type", {
            "0": ["Bỏ", "bo", "xoa", "removed", "remove"],
            "1": ["Thêm", "them", "added", "add"],
        }),
        _table("boolean", {
            "true": ["true", "có", "yes", "1", "x"],
            "false": ["false", "không", "no", "0", ""],
        }),
        _table("status_code", {
            "01": ["Đã đến", "da den", "arrived", "1"],
            "02": ["Từ chối tiếp nhận", "tu choi", "rejected", "reject", "2"],
            "03": ["Đã tiếp nhận", "tiep nhan", "vao so", "accepted", "accept", "3"],
            "04": ["Phân công", "phan cong", "assigned", "assign", "4"],
            "05": ["Đang xử lý", "dang xu ly", "xu ly", "processing", "5"],
            "06": ["Hoàn thành", "hoan thanh", "finished", "done", "6"],
            "13": ["Lấy lại", "lay lai", "recall request", "recall"],
            "15": ["Đồng ý cập nhật/lấy lại", "dong y lay lai", "dong y", "recall agreed"],
            "16": ["Từ chối cập nhật/lấy lại", "tu choi lay lai", "recall refused"],
        }),
    )
}


# ------------------------------------------------------------------------- dates
_DATE_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_DATE_TOKEN_RE = re.compile(r"yyyy|MM|dd|HH|mm|ss|[A-Za-z]")


def _strftime_pattern(pattern: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token not in _DATE_TOKENS:
            raise TransformSpecError(
                f"date pattern {pattern!r} has an unknown letter {token!r}; use yyyy MM dd HH "
                "mm ss (for example dd/MM/yyyy), or iso, epoch, epoch_ms"
            )
        return _DATE_TOKENS[token]

    return _DATE_TOKEN_RE.sub(replace, pattern.replace("%", "%%"))


def _date_transform(pattern: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if pattern == "iso":
        return _from_iso, _to_iso
    if pattern in ("epoch", "epoch_ms"):
        scale = 1000 if pattern == "epoch_ms" else 1
        return (lambda v: _from_epoch(v, scale)), (lambda v: _to_epoch(v, scale))
    fmt = _strftime_pattern(pattern)
    has_time = any(t in pattern for t in ("HH", "mm", "ss"))
    if "%Y" not in fmt or "%m" not in fmt or "%d" not in fmt:
        raise TransformSpecError(f"date pattern {pattern!r} needs yyyy, MM and dd")

    def forward(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value
        text = _as_text(value).strip()
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            raise ValueError(f"{text!r} is not a date in the form {pattern}") from None
        return parsed.replace(tzinfo=VN_TZ) if has_time else parsed.date()

    def reverse(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.astimezone(VN_TZ).strftime(fmt) if value.tzinfo else value.strftime(fmt)
        if isinstance(value, dt.date):
            return value.strftime(fmt)
        return value

    return forward, reverse


def _from_iso(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value
    text = _as_text(value).strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time") from None
    return parsed.astimezone(VN_TZ) if parsed.tzinfo else parsed.replace(tzinfo=VN_TZ)


def _to_iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value.astimezone(VN_TZ) if value.tzinfo else value.replace(tzinfo=VN_TZ)
        return aware.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _from_epoch(value: Any, scale: int) -> Any:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError(f"{value!r} is not a Unix time in {'ms' if scale > 1 else 'seconds'}")
    return dt.datetime.fromtimestamp(number / scale, VN_TZ).replace(microsecond=0)


def _to_epoch(value: Any, scale: int) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=VN_TZ)
        return int(aware.timestamp()) * scale
    if isinstance(value, dt.date):
        return int(dt.datetime.combine(value, dt.time(), VN_TZ).timestamp()) * scale
    return value


# ------------------------------------------------------------------------- transforms
class TransformSpecError(ValueError):
    """A transform name or argument in a mapping file is wrong."""


@dataclass(frozen=True)
class Transform:
    spec: str
    forward: Callable[[Any], Any]
    reverse: Callable[[Any], Any]
    table: CodeTable | None = None


def _identity(value: Any) -> Any:
    return value


def _trim(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


KNOWN_TRANSFORMS = ("trim", "upper", "lower", "date:PATTERN|iso|epoch|epoch_ms", "table:NAME",
                    "max_length:N")


def compile_transform(spec: str, tables: Mapping[str, CodeTable]) -> Transform:
    """Turn ``trim`` / ``date:dd/MM/yyyy`` / ``table:priority`` ... into a Transform."""
    if not isinstance(spec, str):
        raise TransformSpecError(f"a transform is written as a string, got {spec!r}")
    name, _, arg = spec.partition(":")
    if name == "trim" and not arg:
        return Transform(spec, _trim, _identity)
    if name == "upper" and not arg:
        return Transform(spec, lambda v: v.upper() if isinstance(v, str) else v, _identity)
    if name == "lower" and not arg:
        return Transform(spec, lambda v: v.lower() if isinstance(v, str) else v, _identity)
    if name == "date":
        if not arg:
            raise TransformSpecError("date needs a pattern: date:dd/MM/yyyy, date:iso, "
                                     "date:epoch or date:epoch_ms")
        forward, reverse = _date_transform(arg)
        return Transform(spec, forward, reverse)
    if name == "table":
        table = tables.get(arg)
        if table is None:
            raise TransformSpecError(
                f"there is no code table {arg!r}; known tables: {', '.join(sorted(tables))} "
                "(define it under 'tables:')"
            )
        return Transform(spec, table.lookup, table.local, table)
    if name == "max_length":
        if not arg.isdigit() or int(arg) <= 0:
            raise TransformSpecError(f"max_length needs a positive number, got {arg!r}")
        limit = int(arg)

        def check(value: Any) -> Any:
            if isinstance(value, str) and len(value) > limit:
                raise ValueError(f"is {len(value)} characters long, over the limit of {limit}")
            return value

        return Transform(spec, check, _identity)
    raise TransformSpecError(
        f"unknown transform {spec!r}; known: {', '.join(KNOWN_TRANSFORMS)}"
    )
