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

Messages name the call and the hub's host; they never contain headers or secrets. Each
protocol client then checks its own success fields. This module must not know a protocol.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True)
class Edge:
    http: httpx.Client
    base: str  # endpoint without a trailing slash; call paths are appended
    where: str  # the endpoint for messages: no user info, no query


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
    return Edge(http=client, base=str(url).rstrip("/"), where=display(url))


def transport_error(where: str, exc: httpx.HTTPError) -> ConnectorError:
    """The typed error for a request that got no HTTP answer; ``where`` names hub and call."""
    tls_problem = _tls_refusal(exc)
    if tls_problem:
        return ConfigurationError(
            f"{where}: TLS refused ({tls_problem}); check ca_file, the hub's certificate "
            "and our client certificate",
            reason="hub_tls",
        )
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return UnavailableError(
            f"{where}: cannot connect ({type(exc).__name__})", reason="hub_unreachable"
        )
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(
            f"{where}: no answer in time ({type(exc).__name__}); outcome unknown",
            reason="hub_timeout",
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.ProxyError)):
        return ConfigurationError(f"{where}: {exc}", reason="hub_endpoint")
    # The request went out (or partly): whether the hub processed it is unknown.
    return TransientError(
        f"{where}: connection lost ({type(exc).__name__}); outcome unknown",
        reason="hub_connection_lost",
    )


def check_status(
    where: str, response: httpx.Response, describe: Callable[[httpx.Response], str]
) -> None:
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
        retry_after = response.headers.get("Retry-After")
        hint = f" (Retry-After {retry_after})" if retry_after else ""
        raise UnavailableError(
            f"{where}: HTTP {code}{hint}: {describe(response)}",
            reason="hub_busy" if code in (429, 503) else "hub_server_error",
        )
    if code == 408:
        raise TransientError(f"{where}: HTTP 408 request timeout", reason="hub_timeout")
    if code < 400:
        raise ConfigurationError(
            f"{where}: HTTP {code} redirect to {response.headers.get('Location', '?')}; "
            "fix the endpoint",
            reason="hub_endpoint",
        )
    raise PermanentError(f"{where}: HTTP {code}: {describe(response)}", reason="hub_rejected")


def json_object(where: str, response: httpx.Response) -> dict[str, object]:
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
            return f"hub certificate not trusted: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            reason = str(getattr(seen, "reason", "") or "")
            if any(marker in reason for marker in _TLS_REFUSALS):
                return reason
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


def text(value: object) -> str:
    return "" if value is None else str(value)


def document_bytes(answer: dict[str, object], *, where: str, call: str, doc_id: str) -> bytes:
    """The package in a get-document answer (base64 in ``data``); TransientError if unusable."""
    data = answer.get("data")
    if not isinstance(data, str) or not data:
        raise TransientError(
            f"hub {where} returned no content for {call} {doc_id}", reason="hub_bad_response"
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise TransientError(
            f"hub {where} returned invalid base64 for {call} {doc_id}", reason="hub_bad_response"
        ) from None
