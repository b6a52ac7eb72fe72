"""Remembered name preparation: asn1crypto's own result or error for every string, every time."""

from __future__ import annotations

import pytest
from asn1crypto import x509 as asn1_x509

from connector.trust import name_prep

STRINGS = (
    "", "Sở Nội vụ tỉnh Cà Mau", "SỞ  NỘI VỤ\tTỈNH", "Nguyễn Văn An", "ﬁle Ⅳ ｆｕｌｌ", "a\u00adb",
    "x\u200by", "tab\there", "line\nfeed", "000.00.31.H12", "VN", "Ω≈ç√", "e\u0301", "x" * 600,
    "private \ue000 use", "bidi \u200e mark", "unassigned \u0378", "nonchar \ufdd0",
)


def _outcome(prep: object, string: str) -> tuple[str, str]:
    value = asn1_x509.NameTypeAndValue()  # the preparation does not read it
    try:
        return ("value", prep(value, string))  # type: ignore[operator]
    except ValueError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("string", STRINGS)
def test_same_result_or_error_each_time(string: str) -> None:
    expected = _outcome(name_prep.original(), string)
    for _ in range(3):
        assert _outcome(name_prep.prepare, string) == expected


def test_installed_names_compare_as_before() -> None:
    name_prep.install()
    assert asn1_x509.NameTypeAndValue._ldap_string_prep is name_prep.prepare
    one = asn1_x509.Name.build({"common_name": "Sở  Nội vụ", "organization_name": "UBND"})
    same = asn1_x509.Name.build({"common_name": "sở nội vụ", "organization_name": "ubnd"})
    other = asn1_x509.Name.build({"common_name": "Sở Nội vụ A", "organization_name": "UBND"})
    assert one == same and one != other


def test_refused_strings_are_refused_every_time() -> None:
    for _ in range(2):
        assert _outcome(name_prep.prepare, "private \ue000 use")[0] == "error"


NAMES = (
    {"common_name": "Sở Nội vụ", "organization_name": "UBND tỉnh Cà Mau"},
    {"common_name": "sở  nội vụ", "organization_name": "ubnd tỉnh cà mau"},
    {"common_name": "Sở Nội vụ", "organization_name": "UBND tỉnh Cà Mau", "country_name": "VN"},
    {"organization_name": "UBND tỉnh Cà Mau", "common_name": "Sở Nội vụ"},
    {"common_name": "Sở Nội vụ A"},
    {"common_name": "ﬁle"},
    {"common_name": "file"},
    {"common_name": "private \ue000 use"},
)


def _compare(equal: object, one: object, other: object) -> tuple[str, object]:
    try:
        return ("value", equal(one, other))  # type: ignore[operator]
    except ValueError as exc:
        return ("error", str(exc))


def test_name_comparison_same_as_asn1crypto() -> None:
    built = [asn1_x509.Name.build(n) for n in NAMES]
    parsed = [asn1_x509.Name.load(n.dump()) for n in built]
    for one in (*built, *parsed):
        for other in (*built, *parsed, None, "text"):
            expected = _compare(name_prep.original_equal(), one, other)
            for _ in range(2):
                assert _compare(name_prep.names_equal, one, other) == expected


def test_name_keys_same_as_asn1crypto() -> None:
    name_prep.install()
    for spec in NAMES:
        for name in (asn1_x509.Name.build(spec), asn1_x509.Name.load(asn1_x509.Name.build(spec).dump())):
            try:
                expected: tuple[str, str] = ("value", name_prep.original_key()(name))
            except ValueError as exc:
                expected = ("error", str(exc))
            for _ in range(2):
                try:
                    assert ("value", name.hashable) == expected
                except ValueError as exc:
                    assert ("error", str(exc)) == expected
