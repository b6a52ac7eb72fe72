"""The VXP wire conventions shared by the client and the hub emulator (interconnect.md §1).

What the official SDK (SDKVXP 2.0.1) puts on the wire is the reference: its six requests
were captured header by header (``../shared/interop/vxp-wire/``), and this module writes
what it writes and reads what it (and a hub) may send.

Request signing ("XroadVnpt" headers): an ordered map of parameters -- ``systemid``,
``timestamp``, ``Content-Type`` and the call's own parameters, in the SDK's map order for
that call (``SDK_KEY_ORDER``) -- is sent three ways: one ``XroadVnpt-<k>`` header per
entry, the ``;``-joined key list in ``XroadVnpt-sign-header-key``, and a JSON object
``{"XroadVnpt-<k>": v, ...}`` in ``XroadVnpt-sign-header`` authenticated by
``XroadVnpt-hash-header`` = hex(HMAC-SHA256(secret, json)), both UTF-8. A verifier follows
the key list it is given, so the order is a matter of matching the SDK, not of validity.

Timestamp. The SDK formats it with the Java ``SimpleDateFormat`` pattern
``ddMMyyyy'T'HHmmss+SSSS`` in the JVM's default zone. In that pattern ``+`` is not a
pattern letter, so it is a literal plus sign, and ``SSSS`` is the *millisecond* field
zero-padded to four digits -- not a UTC offset, although it looks like one. 5 March 2024,
14:30:15.123 is therefore ``05032024T143015+0123``. The text carries no zone. We write
Vietnam wall-clock time (UTC+7, where VXP deployments run); a verifier accepts the text
as Vietnam time *or* UTC (a JVM left on UTC is common), each checked against the window.
The four digits after ``+`` are ignored on reading (sub-second noise), which also
tolerates peers that wrote an offset such as ``+0700`` there.

``hash-file`` is the SHA-256 of the package. The SDK renders each byte with
``Integer.toHexString`` and so drops leading zeros per byte (62 characters in the captured
request); that is the form the real hub is proven to take, so the client sends it
(``sdk_file_hash``). A server accepts it and the standard zero-padded form. The SDK
hashes the file but uploads its lines re-joined with CRLF, so a server also accepts a
hash of the body with its line endings normalised (``file_hash_matches``): line endings
carry no meaning in XML, which normalises them on parsing.

This module is pure (no I/O, no HTTP library); it must not know about edXML.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from connector.interconnect.credentials import Secret
from connector.timeutil import VN_TZ

PREFIX = "XroadVnpt-"
SIGN_HEADER = "XroadVnpt-sign-header"
SIGN_HEADER_KEY = "XroadVnpt-sign-header-key"
HASH_HEADER = "XroadVnpt-hash-header"
VERSION_HEADER = "XroadVnpt-version"
PROTOCOL_VERSION = "3.0.201608"
SDK_USER_AGENT = "JAVASDKAgent/1.0.0 XRoad/VPCP"

# The SDK's map order of the signed keys, per call, as captured from SDKVXP 2.0.1 (a key a
# request does not carry is skipped; "to" is only present when given). getSentEdocList was
# not captured: it is assumed to sign like getReceivedEdocList, which takes the same
# parameters.
_LIST_ORDER = ("systemid", "servicetype", "messagetype", "timestamp", "Content-Type")
SDK_KEY_ORDER: dict[str, tuple[str, ...]] = {
    "sendEdoc": (
        "systemid",
        "servicetype",
        "messagetype",
        "hash-file",
        "from",
        "to",
        "timestamp",
        "Content-Type",
    ),
    "getReceivedEdocList": _LIST_ORDER,
    "getSentEdocList": _LIST_ORDER,
    "getEdoc": ("systemid", "docId", "filePath", "timestamp", "Content-Type"),
    "updateStatus": ("systemid", "docid", "timestamp", "Content-Type", "status"),
    "getAgenciesList": ("systemid", "timestamp", "Content-Type"),
}
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
    """The standard (zero-padded, lower-case) hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def sdk_file_hash(data: bytes) -> str:
    """The SDK's hex SHA-256, each byte without its leading zero: what a client sends."""
    return _sdk_hex(hashlib.sha256(data).digest())


def _sdk_hex(digest: bytes) -> str:
    return "".join(format(byte, "x") for byte in digest)


def _line_ending_variants(data: bytes) -> Iterator[bytes]:
    """The same lines with LF or CRLF endings, with or without a final one (made lazily:
    packages can be large and usually the first form matches)."""
    lines = data.replace(b"\r\n", b"\n").rstrip(b"\r\n").split(b"\n")
    for ending in (b"\r\n", b"\n"):
        joined = ending.join(lines)
        yield joined + ending
        yield joined


def file_hash_matches(data: bytes, claimed: str, *, line_endings: bool = True) -> bool:
    """True when ``claimed`` is the standard or the SDK hex of the SHA-256 of ``data``.

    With ``line_endings`` (the default), also of ``data`` with its lines re-joined by LF or
    CRLF, with or without a final line ending: the SDK hashes the file but uploads its
    lines re-joined with CRLF. (``hash-file`` guards against damage in transit, not a
    secret: comparing in variable time leaks nothing.)
    """
    candidate = claimed.strip().lower()
    if not candidate or len(candidate) > 64:
        return False
    bodies = itertools.chain([data], _line_ending_variants(data) if line_endings else ())
    for body in bodies:
        digest = hashlib.sha256(body).digest()
        if candidate in (digest.hex(), _sdk_hex(digest)):
            return True
    return False


def signature(secret: Secret, sign_header: str) -> str:
    return hmac.new(secret.reveal(), sign_header.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    params: Iterable[tuple[str, str]],
    *,
    systemid: str,
    secret: Secret,
    content_type: str,
    now: dt.datetime | None = None,
    call: str | None = None,
) -> dict[str, str]:
    """Every ``XroadVnpt-*`` header of one request, in the SDK's order for ``call``.

    ``params`` are the call's own parameters. With ``call`` the keys follow
    ``SDK_KEY_ORDER[call]`` (keys it does not list go last, in the given order); without
    it, ``timestamp``, ``systemid``, ``Content-Type`` come first, then ``params``. Raises
    ValueError if a value cannot travel in an HTTP header (non-ASCII or control
    characters) or a key is given twice.
    """
    given: list[tuple[str, str]] = [
        ("timestamp", format_timestamp(now)),
        ("systemid", systemid),
        ("Content-Type", content_type),
        *params,
    ]
    ordered = given
    if call is not None:
        rank = {key: index for index, key in enumerate(SDK_KEY_ORDER.get(call, ()))}
        last = len(rank)
        ordered = sorted(given, key=lambda item: rank.get(item[0], last))
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
    as_utc = stamp.replace(tzinfo=dt.UTC)
    if min(abs(now - stamp), abs(now - as_utc)) > window:
        raise SignatureRefused(
            f"timestamp {stamp_text} is outside the accepted window of "
            f"{int(window.total_seconds())} s, read as Vietnam time or as UTC "
            "(replay or clock skew)",
            reason="stale_timestamp",
        )
    params = {k: signed[PREFIX + k] for k in keys}
    return VerifiedRequest(systemid=systemid, timestamp=stamp, params=params)


def header_lookup(headers: Mapping[str, str]) -> Callable[[str], str | None]:
    """A case-insensitive getter over a plain mapping (for tests and simple servers)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda name: lowered.get(name.lower())
