"""The VXP client (interconnect.md §1): a ``HubTransport`` over the VNPT "XroadVnpt" API.

It signs every call with the account's HMAC secret, talks HTTPS with certificate
verification (and a client certificate when the hub requires one) through a bounded
connection pool, and translates every failure into the connector's typed errors at this
edge (see ``connector.interconnect.base`` for the meaning of each). It does no retries, no
back-off and no metrics: those are written once around every transport by the daemon.

Secrets never reach a log line or an exception message: only the HMAC of the signed
headers travels, and error texts name the call and the hub's host, never headers.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from connector.errors import (
    ConfigurationError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from connector.interconnect import vxp_wire
from connector.interconnect.base import Agency, MessageType, PendingItem, SentItem
from connector.interconnect.credentials import Secret

log = logging.getLogger(__name__)

SERVICE_TYPE = "eDoc"
DEFAULT_USER_AGENT = f"edoc-connector/0.1 (XroadVnpt {vxp_wire.PROTOCOL_VERSION})"
_MAX_DESC = 300


@dataclass(frozen=True)
class VxpSettings:
    """How to reach one VXP hub account. Secrets are ``Secret`` objects, never text."""

    endpoint: str  # e.g. "https://lgsp.example.gov.vn/vxp"; call paths are appended
    systemid: str  # the account, e.g. "vxp.saas.02"
    secret: Secret
    ca_file: str | None = None  # PEM bundle to trust; None = the system's trust store
    client_cert: str | None = None  # PEM certificate (chain) for TLS client authentication
    client_key: str | None = None  # its PEM private key (defaults to client_cert's file)
    client_key_password: Secret | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    max_connections: int = 4
    user_agent: str = DEFAULT_USER_AGENT
    # Plain http is accepted for loopback hosts (the emulator); anything else needs this.
    allow_plain_http: bool = False


class VxpClient:
    """A VXP hub account. Thread-safe; share one per hub account and close it at shutdown."""

    def __init__(self, settings: VxpSettings, *, transport: httpx.BaseTransport | None = None):
        self._settings = settings
        url = httpx.URL(settings.endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"hub endpoint {_display(url)} is not an http(s) URL", reason="hub_endpoint"
            )
        if url.scheme == "http" and not settings.allow_plain_http and not _is_loopback(url.host):
            raise ConfigurationError(
                f"hub endpoint {_display(url)} is plain http to a non-loopback host; use https "
                "(or set allow_plain_http for a test network)",
                reason="hub_endpoint",
            )
        self._where = _display(url)
        self._base = str(url).rstrip("/")
        verify: ssl.SSLContext | bool = True
        if url.scheme == "https":
            verify = _ssl_context(settings)
        self._http = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.write_timeout,
                pool=settings.pool_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            headers={"User-Agent": settings.user_agent},
            follow_redirects=False,
            transport=transport,
        )

    # -- HubTransport -------------------------------------------------------------------

    def send(
        self,
        package: bytes,
        *,
        message_type: MessageType,
        sender: str,
        to: Sequence[str] = (),
    ) -> str:
        params = [
            ("from", sender),
            ("servicetype", SERVICE_TYPE),
            ("messagetype", message_type),
        ]
        if to:
            params.append(("to", json.dumps(list(to), separators=(",", ":"))))
        params.append(("hash-file", vxp_wire.file_hash(package)))
        files = {"file_doc": ("package.edxml", package, "application/xml")}
        answer = self._call("sendEdoc", params, "multipart/form-data", files=files)
        doc_id = answer.get("DocId")
        if not isinstance(doc_id, (str, int)) or str(doc_id) == "":
            raise TransientError(
                f"hub {self._where} accepted sendEdoc but returned no DocId",
                reason="hub_bad_response",
            )
        return str(doc_id)

    def pending(self, message_type: MessageType) -> list[PendingItem]:
        answer = self._call(
            "getReceivedEdocList",
            [("servicetype", SERVICE_TYPE), ("messagetype", message_type)],
        )
        items: list[PendingItem] = []
        for entry in _data_list(answer, "getReceivedEdocList", self._where):
            doc_id = entry.get("docId")
            if not isinstance(doc_id, (str, int)) or str(doc_id) == "":
                log.warning("hub %s listed an entry without docId; skipped", self._where)
                continue
            kind = str(entry.get("messageType") or message_type).lower()
            items.append(
                PendingItem(
                    doc_id=str(doc_id),
                    message_type="status" if kind == "status" else "edoc",
                    sender=_text(entry.get("from")),
                    recipient=_text(entry.get("to")),
                    created=_text(entry.get("created_time")),
                    status=_text(entry.get("status")),
                )
            )
        return items

    def fetch(self, doc_id: str) -> bytes:
        answer = self._call("getEdoc", [("docId", doc_id)])
        data = answer.get("data")
        if not isinstance(data, str) or not data:
            raise TransientError(
                f"hub {self._where} returned no content for getEdoc {doc_id}",
                reason="hub_bad_response",
            )
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise TransientError(
                f"hub {self._where} returned invalid base64 for getEdoc {doc_id}",
                reason="hub_bad_response",
            ) from None

    def acknowledge(self, doc_id: str, ok: bool) -> None:
        self._call("updateStatus", [("docid", doc_id), ("status", "done" if ok else "fail")])

    def directory(self) -> list[Agency]:
        answer = self._call("getAgenciesList", [])
        agencies = []
        for entry in _data_list(answer, "getAgenciesList", self._where):
            code = _text(entry.get("code"))
            if code:
                agencies.append(
                    Agency(
                        organ_id=code,
                        name=_text(entry.get("name")),
                        mail=_text(entry.get("mail")),
                        parent_id=_text(entry.get("pid")),
                        hub_id=_text(entry.get("id")),
                    )
                )
        return agencies

    def close(self) -> None:
        self._http.close()

    # -- beyond the transport contract --------------------------------------------------

    def sent(self, message_type: MessageType) -> list[SentItem]:
        """What this account sent and how far each recipient got (getSentEdocList)."""
        answer = self._call(
            "getSentEdocList",
            [("servicetype", SERVICE_TYPE), ("messagetype", message_type)],
        )
        return [
            SentItem(
                sender_doc_id=_text(e.get("senderDocId")),
                receiver_doc_id=_text(e.get("receiverDocId")),
                sender=_text(e.get("fromCode")),
                recipient=_text(e.get("toCode")),
                send_status=_text(e.get("sendStatus")),
                receive_status=_text(e.get("receiveStatus")),
            )
            for e in _data_list(answer, "getSentEdocList", self._where)
        ]

    def __enter__(self) -> VxpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one call -------------------------------------------------------------------------

    def _call(
        self,
        call: str,
        params: Iterable[tuple[str, str]],
        content_type: str = "application/json",
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        try:
            headers = vxp_wire.sign(
                params,
                systemid=self._settings.systemid,
                secret=self._settings.secret,
                content_type=content_type,
            )
        except ValueError as exc:
            raise PermanentError(f"{call}: {exc}", reason="bad_parameter") from None
        started = time.monotonic()
        url = f"{self._base}/{call}"
        try:
            if files is not None:
                response = self._http.post(url, headers=headers, files=files)
            else:
                headers["Content-Type"] = "application/json"
                response = self._http.post(url, headers=headers, content=b"{}")
        except httpx.HTTPError as exc:
            raise self._translate_transport_error(call, exc) from exc
        log.debug(
            "hub %s %s -> HTTP %d in %.0f ms",
            self._where,
            call,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return self._check_answer(call, response)

    def _translate_transport_error(self, call: str, exc: httpx.HTTPError) -> Exception:
        where = f"hub {self._where} {call}"
        tls_problem = _tls_refusal(exc)
        if tls_problem:
            return ConfigurationError(
                f"{where}: TLS refused ({tls_problem}); check ca_file, the hub's certificate "
                "and our client certificate",
                reason="hub_tls",
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            # Nothing was sent: the hub is down or unreachable.
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

    def _check_answer(self, call: str, response: httpx.Response) -> dict[str, Any]:
        where = f"hub {self._where} {call}"
        code = response.status_code
        if code in (401, 403):
            raise ConfigurationError(
                f"{where}: HTTP {code}, credentials or identity refused: {_describe(response)}",
                reason="hub_auth" if code == 401 else "hub_forbidden",
            )
        if code == 429 or code >= 500:
            retry_after = response.headers.get("Retry-After")
            hint = f" (Retry-After {retry_after})" if retry_after else ""
            raise UnavailableError(
                f"{where}: HTTP {code}{hint}: {_describe(response)}",
                reason="hub_busy" if code in (429, 503) else "hub_server_error",
            )
        if code == 408:
            raise TransientError(f"{where}: HTTP 408 request timeout", reason="hub_timeout")
        if 300 <= code < 400:
            raise ConfigurationError(
                f"{where}: HTTP {code} redirect to {response.headers.get('Location', '?')}; "
                "fix the endpoint",
                reason="hub_endpoint",
            )
        if code >= 400:
            raise PermanentError(
                f"{where}: HTTP {code}: {_describe(response)}", reason="hub_rejected"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # A 2xx without the protocol's JSON: we cannot tell whether it was processed.
            raise TransientError(f"{where}: answer is not a JSON object", reason="hub_bad_response")
        status = _text(answer.get("status"))
        error_code = _text(answer.get("ErrorCode"))
        if status.upper() != "OK" or error_code != "0":
            raise PermanentError(
                f"{where} refused: ErrorCode {error_code or '?'}: "
                f"{_text(answer.get('ErrorDesc'))[:_MAX_DESC] or 'no description'}",
                reason="hub_refused",
            )
        return answer


def _ssl_context(settings: VxpSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.client_cert:
            password = (
                settings.client_key_password.reveal() if settings.client_key_password else None
            )
            context.load_cert_chain(settings.client_cert, settings.client_key, password)
    except (OSError, ssl.SSLError) as exc:
        # The message names files only; the key password is never echoed.
        raise ConfigurationError(
            f"cannot set up TLS for the hub (ca_file={settings.ca_file}, "
            f"client_cert={settings.client_cert}): {type(exc).__name__}: "
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _display(url: httpx.URL) -> str:
    """The endpoint for messages: scheme, host, port and path, never user info or query."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no description"
    if isinstance(body, dict):
        desc = body.get("ErrorDesc") or body.get("error") or body.get("message") or ""
        code = body.get("ErrorCode")
        text = f"{code}: {desc}" if code not in (None, "") else str(desc)
        return text[:_MAX_DESC] or response.reason_phrase
    return response.reason_phrase


def _data_list(answer: dict[str, Any], call: str, where: str) -> list[dict[str, Any]]:
    data = answer.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise TransientError(f"hub {where} {call}: 'data' is not a list", reason="hub_bad_response")
    return [entry for entry in data if isinstance(entry, dict)]


def _text(value: object) -> str:
    return "" if value is None else str(value)
