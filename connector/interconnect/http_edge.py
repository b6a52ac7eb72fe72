"""The HTTP edge shared by the hub clients: TLS, pooling, timeouts, and failure translation.

Given a client's settings it builds one ``httpx.Client`` (certificate verification against
``ca_file`` or the system store, optional client certificate, bounded pool, explicit
timeouts, no redirects, plain http only to loopback unless allowed), and it translates
what can go wrong on the wire into the connector's typed errors:

* not connected / nothing sent (connect error, connect or pool timeout) -> UnavailableError
* sent, outcome unknown (read/write timeout, connection dropped) -> TransientError
* HTTP 429 and 5xx -> UnavailableError; 408 -> TransientError
* HTTP 401/403, TLS certificate refusals, redirects -> ConfigurationError
* other HTTP 4xx -> PermanentError
* an answer larger than the client's ``max_answer_bytes`` -> PermanentError
  (``hub_answer_too_large``): the bound is enforced while the answer streams in, so a
  huge answer costs at most the bound in memory, never its own size

Messages name the call, the hub's host and the cause in words (DNS lookup failed,
connection refused, TLS certificate not trusted, connect/read/write timeout after N s,
connection reset), never only an exception class; they never contain headers or
secrets. A JSON error body under a non-2xx status is read for the hub's own words
(``describe``) before the typed error is raised. Each protocol client then checks its own
success fields. This module must not know a protocol.
"""

from __future__ import annotations

import base64
import binascii
import errno
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from connector.errors import (
    ConfigurationError,
    ConnectorError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.interconnect.credentials import Secret

MAX_DESCRIPTION = 300
DEFAULT_MAX_ANSWER_BYTES = 96 * 1024 * 1024  # a 50 MB package in base64 inside JSON, and room


class HttpOptions(Protocol):
    """The connection fields every hub client's settings carry."""

    @property
    def endpoint(self) -> str: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def client_cert(self) -> str | None: ...
    @property
    def client_key(self) -> str | None: ...
    @property
    def client_key_password(self) -> Secret | None: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def write_timeout(self) -> float: ...
    @property
    def pool_timeout(self) -> float: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def user_agent(self) -> str: ...
    @property
    def allow_plain_http(self) -> bool: ...
    @property
    def max_answer_bytes(self) -> int: ...


@dataclass(frozen=True)
class Reply:
    """A hub's HTTP answer, read whole but never beyond the client's bound."""

    status_code: int
    content: bytes | bytearray
    reason_phrase: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def json(self) -> object:
        """The decoded JSON body; raises ValueError if it is not JSON."""
        return json.loads(self.content)


@dataclass(frozen=True)
class Edge:
    http: httpx.Client
    base: str  # endpoint without a trailing slash; call paths are appended
    where: str  # the endpoint for messages: no user info, no query
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    timeouts: dict[str, float] = field(default_factory=dict)

    def exchange(self, method: str, url: str, *, where: str, **request: object) -> Reply:
        """Send one request and read its answer within ``max_answer_bytes``.

        ``request`` goes to ``httpx.Client.stream`` (headers, content, files, params).
        Failures to get an answer become typed errors naming the cause; an oversized
        answer is cut off as soon as it passes the bound (or at once if its declared
        length does), the connection dropped.
        """
        limit = self.max_answer_bytes
        try:
            with self.http.stream(method, url, **request) as response:  # type: ignore[arg-type]
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_large(where, f"declares {declared} bytes", limit)
                content = bytearray()  # grown in place: no second copy when done
                for chunk in response.iter_bytes():
                    if len(content) + len(chunk) > limit:
                        raise _too_large(where, f"passed {len(content) + len(chunk)} bytes", limit)
                    content += chunk
                return Reply(
                    status_code=response.status_code,
                    content=content,
                    reason_phrase=response.reason_phrase,
                    headers={k.lower(): v for k, v in response.headers.items()},
                )
        except httpx.HTTPError as exc:
            raise transport_error(where, exc, self.timeouts) from exc


def _too_large(where: str, what: str, limit: int) -> PermanentError:
    return PermanentError(
        f"{where}: the answer {what}, more than the {limit} bytes allowed "
        "(hub.max_answer_bytes); not read further",
        reason="hub_answer_too_large",
    )


def open_edge(options: HttpOptions, transport: httpx.BaseTransport | None = None) -> Edge:
    url = httpx.URL(options.endpoint)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"hub endpoint {display(url)} is not an http(s) URL", reason="hub_endpoint"
        )
    if url.scheme == "http" and not options.allow_plain_http and not is_loopback(url.host):
        raise ConfigurationError(
            f"hub endpoint {display(url)} is plain http to a non-loopback host; use https "
            "(or set allow_plain_http for a test network)",
            reason="hub_endpoint",
        )
    verify: ssl.SSLContext | bool = _ssl_context(options) if url.scheme == "https" else True
    client = httpx.Client(
        verify=verify,
        timeout=httpx.Timeout(
            connect=options.connect_timeout,
            read=options.read_timeout,
            write=options.write_timeout,
            pool=options.pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=options.max_connections,
            max_keepalive_connections=options.max_connections,
        ),
        headers={"User-Agent": options.user_agent},
        follow_redirects=False,
        transport=transport,
    )
    return Edge(
        http=client,
        base=str(url).rstrip("/"),
        where=display(url),
        max_answer_bytes=options.max_answer_bytes,
        timeouts={
            "connect": options.connect_timeout,
            "read": options.read_timeout,
            "write": options.write_timeout,
            "pool": options.pool_timeout,
        },
    )


def transport_error(
    where: str, exc: httpx.HTTPError, timeouts: dict[str, float] | None = None
) -> ConnectorError:
    """The typed error for a request that got no HTTP answer; ``where`` names hub and call.

    The message says what happened in words (``cause``), not only the exception class.
    """
    tls_problem = _tls_refusal(exc)
    if tls_problem:
        return ConfigurationError(
            f"{where}: TLS refused ({tls_problem}); check ca_file, the hub's certificate "
            "and our client certificate",
            reason="hub_tls",
        )
    why = cause(exc, timeouts or {})
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return UnavailableError(f"{where}: cannot connect: {why}", reason="hub_unreachable")
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{where}: {why}; outcome unknown", reason="hub_timeout")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.ProxyError)):
        return ConfigurationError(f"{where}: {why}", reason="hub_endpoint")
    # The request went out (or partly): whether the hub processed it is unknown.
    return TransientError(
        f"{where}: connection lost: {why}; outcome unknown", reason="hub_connection_lost"
    )


_TIMEOUT_PHASES: tuple[tuple[type[httpx.TimeoutException], str, str], ...] = (
    (httpx.ConnectTimeout, "connect", "no connection established"),
    (httpx.ReadTimeout, "read", "no answer"),
    (httpx.WriteTimeout, "write", "the request could not be sent"),
    (httpx.PoolTimeout, "pool", "no free connection in our pool"),
)


def cause(exc: BaseException, timeouts: dict[str, float]) -> str:
    """What went wrong on the wire, in words: DNS, refused, reset, TLS, which timeout."""
    for kind, phase, what in _TIMEOUT_PHASES:
        if isinstance(exc, kind):
            limit = timeouts.get(phase)
            after = f" within {limit:g} s" if limit is not None else ""
            return f"{phase} timeout: {what}{after} ({type(exc).__name__})"
    seen: BaseException | None = exc
    while seen is not None:
        words = _os_cause(seen)
        if words:
            return f"{words} ({type(exc).__name__})"
        seen = seen.__cause__ or seen.__context__
    detail = _detail(str(exc))
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the hub closed the connection or broke the protocol: {detail}"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _os_cause(exc: BaseException) -> str | None:
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port, or a firewall refuses)"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the peer"
    if isinstance(exc, OSError) and exc.errno is not None:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{exc.strerror or 'system error'} ({name})"
    text = str(exc)
    # httpcore re-raises socket errors as text only: recognise the usual ones.
    for marker, words in _TEXT_CAUSES:
        if marker.search(text):
            return f"{words}: {_detail(text)}"
    return None


_TEXT_CAUSES = (
    (
        re.compile(
            r"Name or service not known|nodename nor servname|getaddrinfo|"
            r"Temporary failure in name resolution|No address associated",
            re.I,
        ),
        "DNS lookup failed",
    ),
    (re.compile(r"Connection refused|Errno 111", re.I), "connection refused"),
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", re.I),
        "TLS verification failed",
    ),
    (re.compile(r"Connection reset|Errno 104", re.I), "connection reset by the peer"),
    (re.compile(r"Network is unreachable|No route to host", re.I), "network unreachable"),
)


def _detail(text: str) -> str:
    return " ".join(text.split())[:MAX_DESCRIPTION]


def check_status(where: str, response: Reply, describe: Callable[[Reply], str]) -> None:
    """Raise the typed error for a non-2xx answer; ``describe`` extracts the hub's words."""
    code = response.status_code
    if code < 300:
        return
    if code in (401, 403):
        raise ConfigurationError(
            f"{where}: HTTP {code}, credentials or identity refused: {describe(response)}",
            reason="hub_auth" if code == 401 else "hub_forbidden",
        )
    if code == 429 or code >= 500:
        retry_after = response.headers.get("retry-after")
        hint = f" (Retry-After {retry_after})" if retry_after else ""
        raise UnavailableError(
            f"{where}: HTTP {code}{hint}: {describe(response)}",
            reason="hub_busy" if code in (429, 503) else "hub_server_error",
        )
    if code == 408:
        raise TransientError(f"{where}: HTTP 408 request timeout", reason="hub_timeout")
    if code < 400:
        raise ConfigurationError(
            f"{where}: HTTP {code} redirect to {response.headers.get('location', '?')}; "
            "fix the endpoint",
            reason="hub_endpoint",
        )
    if code in (404, 405) and not _is_json_object(response):
        # No hub said this (a web server or proxy page): the path does not exist there. Not
        # this package's failure: every request would get the same until the endpoint is fixed.
        raise ConfigurationError(
            f"{where}: HTTP {code} {response.reason_phrase or ''} without a hub answer (not "
            "JSON): the endpoint or its path is wrong; fix hub.endpoint",
            reason="hub_endpoint",
        )
    raise PermanentError(f"{where}: HTTP {code}: {describe(response)}", reason="hub_rejected")


def _is_json_object(response: Reply) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def json_object(where: str, response: Reply) -> dict[str, object]:
    """The answer's JSON object; a 2xx without one leaves the outcome unknown (transient)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TransientError(f"{where}: answer is not a JSON object", reason="hub_bad_response")
    return answer


def _ssl_context(options: HttpOptions) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
        if options.client_cert:
            password = options.client_key_password.reveal() if options.client_key_password else None
            context.load_cert_chain(options.client_cert, options.client_key, password)
    except (OSError, ssl.SSLError) as exc:
        # The message names files only; the key password is never echoed.
        raise ConfigurationError(
            f"cannot set up TLS for the hub (ca_file={options.ca_file}, "
            f"client_cert={options.client_cert}): {type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or getattr(exc, 'reason', None) or 'invalid'}",
            reason="hub_tls",
        ) from None
    return context


# TLS alerts by which a peer refuses our certificate or parameters: a deployment problem.
_TLS_REFUSALS = (
    "ALERT_CERTIFICATE",
    "ALERT_BAD_CERTIFICATE",
    "ALERT_UNKNOWN_CA",
    "ALERT_ACCESS_DENIED",
    "ALERT_HANDSHAKE_FAILURE",
    "ALERT_PROTOCOL_VERSION",
    "ALERT_UNSUPPORTED_CERTIFICATE",
)


def _tls_refusal(exc: BaseException) -> str | None:
    """Why TLS failed if it was a certificate/handshake refusal, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS verification failed: hub certificate not trusted: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            reason = str(getattr(seen, "reason", "") or "")
            if any(marker in reason for marker in _TLS_REFUSALS):
                return f"the TLS handshake was refused: {reason}"
        seen = seen.__cause__ or seen.__context__
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (plain http is tolerated only there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def display(url: httpx.URL) -> str:
    """The endpoint for messages: scheme, host, port and path, never user info or query."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def entries(answer: dict[str, Any], call: str, where: str) -> list[dict[str, Any]]:
    """The entries of a list answer's ``data``: null, "" and {} are an empty list (as hubs
    write one), a single object a one-entry list (as XML-to-JSON converters write one)."""
    data = answer.get("data")
    if data is None or data == "" or data == {}:
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise TransientError(f"hub {where} {call}: 'data' is not a list", reason="hub_bad_response")
    return [entry for entry in data if isinstance(entry, dict)]


def text(value: object) -> str:
    return "" if value is None else str(value)


def document_bytes(answer: dict[str, object], *, where: str, call: str, doc_id: str) -> bytes:
    """The package in a get-document answer (base64 in ``data``); TransientError if unusable.

    Read as the SDK reads it: line breaks and other whitespace inside the base64 (MIME
    style, 76-character lines) are ignored, the final padding may be left out; any other
    non-alphabet character is refused.
    """
    data = answer.get("data")
    if not isinstance(data, str) or not data.strip():
        raise TransientError(
            f"hub {where} returned no content for {call} {doc_id}", reason="hub_bad_response"
        )
    compact = "".join(data.split())
    if "=" not in compact:  # padding is optional for the SDK's Java decoder, so for hubs too
        compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TransientError(
            f"hub {where} returned invalid base64 for {call} {doc_id}: {exc}",
            reason="hub_bad_response",
        ) from None
