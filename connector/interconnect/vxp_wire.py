"""The VXP wire conventions shared by the client and the hub emulator (interconnect.md §1).

Request signing ("XroadVnpt" headers): an ordered map of parameters -- ``timestamp``,
``systemid``, ``Content-Type``, then the call's own parameters -- is sent three ways: one
``XroadVnpt-<k>`` header per entry, the ``;``-joined key list in
``XroadVnpt-sign-header-key``, and a JSON object ``{"XroadVnpt-<k>": v, ...}`` in
``XroadVnpt-sign-header`` authenticated by ``XroadVnpt-hash-header`` =
hex(HMAC-SHA256(secret, json)), both UTF-8.

Timestamp. The SDK formats it with the Java ``SimpleDateFormat`` pattern
``ddMMyyyy'T'HHmmss+SSSS`` in the JVM's default zone. In that pattern ``+`` is not a
pattern letter, so it is a literal plus sign, and ``SSSS`` is the *millisecond* field
zero-padded to four digits -- not a UTC offset, although it looks like one. 5 March 2024,
14:30:15.123 is therefore ``05032024T143015+0123``. The text carries no zone; VXP
deployments run on Vietnam time, so we write and read it as Vietnam wall-clock time
(UTC+7). A reader ignores the four digits after ``+`` (they are sub-second noise), which
also tolerates peers that wrote an offset such as ``+0700`` there.

``hash-file`` is the hex SHA-256 of the package. The SDK renders each byte with
``Integer.toHexString`` and so drops leading zeros per byte; servers must accept that form
as well as the standard zero-padded one, and clients send the standard one.

This module is pure (no I/O, no HTTP library); it must not know about edXML.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from connector.interconnect.credentials import Secret
from connector.timeutil import VN_TZ

PREFIX = "XroadVnpt-"
SIGN_HEADER = "XroadVnpt-sign-header"
SIGN_HEADER_KEY = "XroadVnpt-sign-header-key"
HASH_HEADER = "XroadVnpt-hash-header"
VERSION_HEADER = "XroadVnpt-version"
PROTOCOL_VERSION = "3.0.201608"
_META_HEADERS = {h.lower() for h in (SIGN_HEADER, SIGN_HEADER_KEY, HASH_HEADER, VERSION_HEADER)}

_TIMESTAMP_RE = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{4})$")
# Header values must survive HTTP/1.1 unchanged: printable ASCII only.
_SAFE_VALUE_RE = re.compile(r"^[\x20-\x7e]*$")


def format_timestamp(moment: dt.datetime | None = None) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS`` as Java's SimpleDateFormat writes it, in Vietnam time."""
    value = (moment or dt.datetime.now(VN_TZ)).astimezone(VN_TZ)
    return f"{value:%d%m%Y}T{value:%H%M%S}+{value.microsecond // 1000:04d}"


def parse_timestamp(text: str) -> dt.datetime:
    """Read a VXP timestamp as Vietnam time, to the second; raises ValueError if malformed."""
    match = _TIMESTAMP_RE.match(text.strip())
    if match is None:
        raise ValueError(f"timestamp {text!r} is not in the form ddMMyyyyTHHmmss+SSSS")
    day, month, year, hour, minute, second, _subsecond = (int(g) for g in match.groups())
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ)


def file_hash(data: bytes) -> str:
    """The standard (zero-padded, lower-case) hex SHA-256 a client sends as ``hash-file``."""
    return hashlib.sha256(data).hexdigest()


def sdk_file_hash(data: bytes) -> str:
    """The SDK's quirky hex SHA-256: each byte without its leading zero."""
    return "".join(format(byte, "x") for byte in hashlib.sha256(data).digest())


def file_hash_matches(data: bytes, claimed: str) -> bool:
    """True when ``claimed`` is the standard or the SDK form of the SHA-256 of ``data``."""
    candidate = claimed.strip().lower()
    return hmac.compare_digest(candidate, file_hash(data)) or hmac.compare_digest(
        candidate, sdk_file_hash(data)
    )


def signature(secret: Secret, sign_header: str) -> str:
    return hmac.new(secret.reveal(), sign_header.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    params: Iterable[tuple[str, str]],
    *,
    systemid: str,
    secret: Secret,
    content_type: str,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Every ``XroadVnpt-*`` header of one request, in the SDK's order.

    ``params`` are the call's own parameters in order. Raises ValueError if a value cannot
    travel in an HTTP header (non-ASCII or control characters).
    """
    ordered: list[tuple[str, str]] = [
        ("timestamp", format_timestamp(now)),
        ("systemid", systemid),
        ("Content-Type", content_type),
        *params,
    ]
    headers: dict[str, str] = {}
    signed: dict[str, str] = {}
    keys: list[str] = []
    for key, value in ordered:
        if not _SAFE_VALUE_RE.match(value) or not _SAFE_VALUE_RE.match(key) or ";" in key:
            raise ValueError(f"parameter {key!r} has characters that cannot go in an HTTP header")
        if key in keys:
            raise ValueError(f"parameter {key!r} given twice")
        headers[PREFIX + key] = value
        signed[PREFIX + key] = value
        keys.append(key)
    sign_header = json.dumps(signed, ensure_ascii=True, separators=(",", ":"))
    headers[SIGN_HEADER_KEY] = ";".join(keys)
    headers[SIGN_HEADER] = sign_header
    headers[HASH_HEADER] = signature(secret, sign_header)
    headers[VERSION_HEADER] = PROTOCOL_VERSION
    return headers


class SignatureRefused(Exception):
    """A request's XroadVnpt signature or timestamp is not acceptable (server side).

    ``reason`` is a short code; the message never contains secrets.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedRequest:
    systemid: str
    timestamp: dt.datetime
    params: dict[str, str]  # every signed parameter, by its key without the prefix


def verify(
    get_header: Callable[[str], str | None],
    header_names: Iterable[str],
    *,
    secret_for: Callable[[str], Secret | None],
    now: dt.datetime,
    window: dt.timedelta,
) -> VerifiedRequest:
    """Check a request's XroadVnpt headers as a hub does; raise SignatureRefused if not valid.

    ``get_header`` looks a header up case-insensitively; ``header_names`` lists the names
    present (to find unsigned ``XroadVnpt-*`` headers); ``secret_for`` gives an account's
    secret by systemid, or None if the account is unknown.
    """
    sign_header = get_header(SIGN_HEADER)
    key_list = get_header(SIGN_HEADER_KEY)
    claimed = get_header(HASH_HEADER)
    if not sign_header or not key_list or not claimed:
        raise SignatureRefused(
            "request is not signed (XroadVnpt headers missing)", reason="unsigned"
        )
    try:
        decoded = json.loads(sign_header)
    except ValueError:
        raise SignatureRefused(
            "XroadVnpt-sign-header is not JSON", reason="bad_sign_header"
        ) from None
    if not isinstance(decoded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in decoded.items()
    ):
        raise SignatureRefused(
            "XroadVnpt-sign-header is not a JSON object of strings", reason="bad_sign_header"
        )
    signed: dict[str, str] = decoded
    systemid = signed.get(PREFIX + "systemid", "")
    secret = secret_for(systemid) if systemid else None
    if secret is None:
        raise SignatureRefused(f"unknown account {systemid!r}", reason="unknown_account")
    if not hmac.compare_digest(claimed.strip().lower(), signature(secret, sign_header)):
        raise SignatureRefused(
            f"XroadVnpt-hash-header does not match for account {systemid!r}",
            reason="bad_signature",
        )
    keys = key_list.split(";")
    if sorted(PREFIX + k for k in keys) != sorted(signed):
        raise SignatureRefused(
            "XroadVnpt-sign-header-key does not list exactly the signed keys",
            reason="header_mismatch",
        )
    for key in keys:
        if get_header(PREFIX + key) != signed[PREFIX + key]:
            raise SignatureRefused(
                f"header {PREFIX}{key} differs from its signed value", reason="header_mismatch"
            )
    signed_names = {(PREFIX + k).lower() for k in keys}
    for name in header_names:
        lowered = name.lower()
        if (
            lowered.startswith(PREFIX.lower())
            and lowered not in signed_names
            and lowered not in _META_HEADERS
        ):
            raise SignatureRefused(f"header {name} is not signed", reason="header_mismatch")
    stamp_text = signed.get(PREFIX + "timestamp")
    if stamp_text is None:
        raise SignatureRefused("the timestamp is not signed", reason="bad_timestamp")
    try:
        stamp = parse_timestamp(stamp_text)
    except ValueError as exc:
        raise SignatureRefused(str(exc), reason="bad_timestamp") from None
    if abs(now - stamp) > window:
        raise SignatureRefused(
            f"timestamp {stamp_text} is outside the accepted window of "
            f"{int(window.total_seconds())} s (replay or clock skew)",
            reason="stale_timestamp",
        )
    params = {k: signed[PREFIX + k] for k in keys}
    return VerifiedRequest(systemid=systemid, timestamp=stamp, params=params)


def header_lookup(headers: Mapping[str, str]) -> Callable[[str], str | None]:
    """A case-insensitive getter over a plain mapping (for tests and simple servers)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower())
