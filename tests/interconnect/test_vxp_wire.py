from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from connector.interconnect import Secret
from connector.interconnect import vxp_wire as w
from connector.timeutil import VN_TZ

SECRET = Secret("s3cret-for-tests")
NOW = dt.datetime(2024, 3, 5, 14, 30, 15, 123456, tzinfo=VN_TZ)


def test_timestamp_is_simpledateformat_millis_not_an_offset() -> None:
    assert w.format_timestamp(NOW) == "05032024T143015+0123"
    utc = NOW.astimezone(dt.UTC)
    assert w.format_timestamp(utc) == "05032024T143015+0123"  # always Vietnam wall-clock
    assert w.parse_timestamp("05032024T143015+0123") == NOW.replace(microsecond=0)
    # A peer that wrote an offset there is read the same way (the field is ignored).
    assert w.parse_timestamp("05032024T143015+0700") == NOW.replace(microsecond=0)
    with pytest.raises(ValueError):
        w.parse_timestamp("2024-03-05T14:30:15+07:00")


def test_signed_headers_follow_the_sdk_order_and_hmac() -> None:
    headers = w.sign(
        [("from", "000.00.31.H12"), ("messagetype", "edoc")],
        systemid="vxp.saas.02",
        secret=SECRET,
        content_type="application/json",
        now=NOW,
    )
    assert (
        headers["XroadVnpt-sign-header-key"] == "timestamp;systemid;Content-Type;from;messagetype"
    )
    signed = json.loads(headers["XroadVnpt-sign-header"])
    assert list(signed) == [
        "XroadVnpt-timestamp",
        "XroadVnpt-systemid",
        "XroadVnpt-Content-Type",
        "XroadVnpt-from",
        "XroadVnpt-messagetype",
    ]
    assert signed["XroadVnpt-timestamp"] == headers["XroadVnpt-timestamp"] == "05032024T143015+0123"
    assert headers["XroadVnpt-from"] == "000.00.31.H12"
    import hmac

    expected = hmac.new(
        b"s3cret-for-tests", headers["XroadVnpt-sign-header"].encode(), hashlib.sha256
    ).hexdigest()
    assert headers["XroadVnpt-hash-header"] == expected
    assert headers["XroadVnpt-version"] == "3.0.201608"


def _verify(headers: dict[str, str], now: dt.datetime = NOW) -> w.VerifiedRequest:
    return w.verify(
        w.header_lookup(headers),
        headers.keys(),
        secret_for=lambda sid: SECRET if sid == "vxp.saas.02" else None,
        now=now,
        window=dt.timedelta(minutes=5),
    )


def _headers() -> dict[str, str]:
    return w.sign(
        [("docId", "abc")], systemid="vxp.saas.02", secret=SECRET, content_type="x", now=NOW
    )


def test_verify_accepts_a_good_request_and_returns_params() -> None:
    verified = _verify(_headers())
    assert verified.systemid == "vxp.saas.02"
    assert verified.params["docId"] == "abc"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda h: h.__setitem__("XroadVnpt-docId", "other"), "header_mismatch"),
        (
            lambda h: h.__setitem__(
                "XroadVnpt-sign-header", h["XroadVnpt-sign-header"].replace("abc", "xyz")
            ),
            "bad_signature",
        ),
        (lambda h: h.__setitem__("XroadVnpt-hash-header", "0" * 64), "bad_signature"),
        (lambda h: h.__setitem__("XroadVnpt-status", "done"), "header_mismatch"),
        (lambda h: h.pop("XroadVnpt-hash-header"), "unsigned"),
        (lambda h: h.__setitem__("XroadVnpt-sign-header", "[1]"), "bad_sign_header"),
        (
            lambda h: h.__setitem__("XroadVnpt-sign-header-key", "timestamp;systemid;Content-Type"),
            "header_mismatch",
        ),
    ],
)
def test_verify_refuses_tampering(tamper: object, reason: str) -> None:
    headers = _headers()
    tamper(headers)  # type: ignore[operator]
    with pytest.raises(w.SignatureRefused) as refused:
        _verify(headers)
    assert refused.value.reason == reason
    assert "s3cret" not in str(refused.value)


def test_verify_refuses_unknown_account_and_stale_timestamp() -> None:
    other = w.sign([], systemid="vxp.unknown", secret=SECRET, content_type="x", now=NOW)
    with pytest.raises(w.SignatureRefused, match="unknown account"):
        _verify(other)
    with pytest.raises(w.SignatureRefused) as stale:
        _verify(_headers(), now=NOW + dt.timedelta(minutes=6))
    assert stale.value.reason == "stale_timestamp"
    _verify(_headers(), now=NOW - dt.timedelta(minutes=4))  # inside the window


def test_header_values_must_be_printable_ascii() -> None:
    with pytest.raises(ValueError):
        w.sign([("from", "Sở\nNội vụ")], systemid="s", secret=SECRET, content_type="x")


def test_file_hash_accepts_standard_and_sdk_forms() -> None:
    data = b"edxml bytes"
    digest = hashlib.sha256(data).digest()
    quirky = "".join(f"{b:x}" for b in digest)
    assert w.file_hash(data) == digest.hex()
    assert w.sdk_file_hash(data) == quirky
    assert w.file_hash_matches(data, digest.hex().upper())
    assert w.file_hash_matches(data, quirky)
    assert not w.file_hash_matches(data, hashlib.sha256(b"other").hexdigest())


def test_sdk_hash_really_differs_when_a_byte_is_below_16() -> None:
    # Find content whose digest has a byte < 0x10 so the quirk is visible.
    data = next(
        d for d in (str(i).encode() for i in range(1000)) if min(hashlib.sha256(d).digest()) < 16
    )
    assert len(w.sdk_file_hash(data)) < 64
    assert w.file_hash_matches(data, w.sdk_file_hash(data))


@pytest.mark.parametrize(
    ("call", "params", "keys"),
    [
        (
            "sendEdoc",
            [("from", "A"), ("servicetype", "eDoc"), ("messagetype", "edoc"), ("hash-file", "h")],
            "systemid;servicetype;messagetype;hash-file;from;timestamp;Content-Type",
        ),
        (
            "getEdoc",
            [("docId", "1"), ("filePath", "xml")],
            "systemid;docId;filePath;timestamp;Content-Type",
        ),
        (
            "updateStatus",
            [("docid", "1"), ("status", "done")],
            "systemid;docid;timestamp;Content-Type;status",
        ),
        ("getAgenciesList", [], "systemid;timestamp;Content-Type"),
        ("unknownCall", [("x", "1")], "timestamp;systemid;Content-Type;x"),
    ],
)
def test_sign_follows_the_sdk_key_order_per_call(
    call: str, params: list[tuple[str, str]], keys: str
) -> None:
    headers = w.sign(params, systemid="s", secret=SECRET, content_type="c", now=NOW, call=call)
    assert headers["XroadVnpt-sign-header-key"] == keys
    assert list(json.loads(headers["XroadVnpt-sign-header"])) == [
        f"XroadVnpt-{k}" for k in keys.split(";")
    ]


@pytest.mark.parametrize("zone_hours", [7, 0])
def test_verify_reads_the_timestamp_as_vietnam_time_or_utc(zone_hours: int) -> None:
    moment = NOW.astimezone(dt.timezone(dt.timedelta(hours=zone_hours)))
    wall = moment.replace(tzinfo=VN_TZ)  # the same wall-clock text, as a JVM in that zone
    headers = w.sign(
        [("docId", "abc")], systemid="vxp.saas.02", secret=SECRET, content_type="x", now=wall
    )
    assert _verify(headers, now=NOW).systemid == "vxp.saas.02"


def test_verify_refuses_a_timestamp_of_another_zone() -> None:
    wall = NOW.astimezone(dt.timezone(dt.timedelta(hours=3))).replace(tzinfo=VN_TZ)
    headers = w.sign(
        [("docId", "abc")], systemid="vxp.saas.02", secret=SECRET, content_type="x", now=wall
    )
    with pytest.raises(w.SignatureRefused) as stale:
        _verify(headers, now=NOW)
    assert stale.value.reason == "stale_timestamp" and "UTC" in str(stale.value)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("sent", ["lf", "crlf", "crlf+blank", "no-final"])
def test_file_hash_tolerates_line_endings_only(ending: bytes, sent: str) -> None:
    lines = [b"<?xml version='1.0'?>", b"<edXML>", b"  <x>1</x>", b"</edXML>"]
    original = ending.join(lines) + ending
    body = {
        "lf": b"\n".join(lines) + b"\n",
        "crlf": b"\r\n".join(lines) + b"\r\n",
        "crlf+blank": b"\r\n".join(lines) + b"\r\n\r\n",
        "no-final": b"\r\n".join(lines),
    }[sent]
    for claimed in (w.file_hash(original), w.sdk_file_hash(original)):
        assert w.file_hash_matches(body, claimed)
        assert not w.file_hash_matches(body.replace(b"1", b"2"), claimed)
        assert not w.file_hash_matches(body, claimed, line_endings=False) or body == original
