"""The VXP client (interconnect.md §1): a ``HubTransport`` over the VNPT "XroadVnpt" API.

On the wire it is the official SDK (SDKVXP 2.0.1, captured in ``../shared/interop/
vxp-wire/``): ``sendEdoc`` uploads the ``.edxml`` as the raw body (``application/
octet-stream``; ``upload="multipart"`` sends a ``file_doc`` part instead, for hubs that
want it) with the SDK's ``hash-file`` hex; list calls and ``getAgenciesList`` have an empty
body, ``getEdoc`` and ``updateStatus`` ``{}``; ``getEdoc`` signs ``docId`` and ``filePath``,
``updateStatus`` ``docid``; keys are signed in the SDK's order per call; the User-Agent is
the SDK's. One deliberate difference: the package bytes travel exactly as built (the SDK
re-joins the file's lines with CRLF); its hash matches the body either way.

Answers are read as the SDK reads them: ``ErrorCode`` decides (with ``status`` when
present), a JSON error body under a non-2xx status gives the hub's words, base64 with
line breaks decodes; answers are bounded by ``max_answer_bytes`` while they stream in.

It signs every call with the account's HMAC secret, talks HTTPS with certificate
verification (and a client certificate when the hub requires one) through a bounded
connection pool, and translates every failure into the connector's typed errors at this
edge (see ``connector.interconnect.base`` for the meaning of each). It does no retries, no
back-off and no metrics: those are written once around every transport by the daemon.

Secrets never reach a log line or an exception message: only the HMAC of the signed
headers travels, and error texts name the call and the hub's host, never headers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from connector.errors import PermanentError, TransientError
from connector.interconnect import http_edge, vxp_wire
from connector.interconnect.base import Agency, MessageType, PendingItem, SentItem
from connector.interconnect.credentials import Secret

log = logging.getLogger(__name__)

SERVICE_TYPE = "eDoc"
DEFAULT_USER_AGENT = vxp_wire.SDK_USER_AGENT  # hubs may filter on it; the SDK's is proven
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
MULTIPART = "multipart/form-data"
_EMPTY = b""
_EMPTY_OBJECT = b"{}"


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
    upload: Literal["raw", "multipart"] = "raw"  # sendEdoc body: raw as the SDK, or file_doc
    file_path: str = "xml"  # the SDK's signed getEdoc filePath (its local save folder)
    max_answer_bytes: int = http_edge.DEFAULT_MAX_ANSWER_BYTES


class VxpClient:
    """A VXP hub account. Thread-safe; share one per hub account and close it at shutdown."""

    def __init__(self, settings: VxpSettings, *, transport: httpx.BaseTransport | None = None):
        self._settings = settings
        edge = http_edge.open_edge(settings, transport)
        self._edge = edge
        self._http, self._base, self._where = edge.http, edge.base, edge.where

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
        params.append(("hash-file", vxp_wire.sdk_file_hash(package)))
        if self._settings.upload == "multipart":
            files = {"file_doc": ("package.edxml", package, "application/xml")}
            answer = self._call("sendEdoc", params, MULTIPART, files=files)
        else:
            answer = self._call("sendEdoc", params, OCTET_STREAM, body=package)
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
            body=_EMPTY,
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
        answer = self._call("getEdoc", [("docId", doc_id), ("filePath", self._settings.file_path)])
        return http_edge.document_bytes(answer, where=self._where, call="getEdoc", doc_id=doc_id)

    def acknowledge(self, doc_id: str, ok: bool) -> None:
        self._call("updateStatus", [("docid", doc_id), ("status", "done" if ok else "fail")])

    def directory(self) -> list[Agency]:
        answer = self._call("getAgenciesList", [], body=_EMPTY)
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
        content_type: str = JSON,
        *,
        body: bytes = _EMPTY_OBJECT,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """One signed request; ``body`` as given (``{}`` by default), or ``files`` as multipart."""
        try:
            signed = vxp_wire.sign(
                params,
                systemid=self._settings.systemid,
                secret=self._settings.secret,
                content_type=content_type,
                call=call,
            )
        except ValueError as exc:
            raise PermanentError(f"{call}: {exc}", reason="bad_parameter") from None
        started = time.monotonic()
        where = f"hub {self._where} {call}"
        url = f"{self._base}/{call}"
        if files is not None:
            # httpx writes the multipart Content-Type itself (with its boundary).
            reply = self._edge.exchange("POST", url, where=where, headers=signed, files=files)
        else:
            headers = {"Content-Type": content_type, **signed}
            reply = self._edge.exchange("POST", url, where=where, headers=headers, content=body)
        log.debug(
            "hub %s %s -> HTTP %d in %.0f ms",
            self._where,
            call,
            reply.status_code,
            (time.monotonic() - started) * 1000,
        )
        return self._check_answer(where, reply)

    def _check_answer(self, where: str, reply: http_edge.Reply) -> dict[str, Any]:
        http_edge.check_status(where, reply, _describe)
        answer = http_edge.json_object(where, reply)
        if not succeeded(answer):
            code = _text(answer.get("ErrorCode")) or "?"
            status = _text(answer.get("status"))
            description = _text(answer.get("ErrorDesc"))[: http_edge.MAX_DESCRIPTION]
            if "ErrorCode" not in answer and "status" not in answer:
                raise TransientError(
                    f"{where}: the answer has neither ErrorCode nor status; outcome unknown",
                    reason="hub_bad_response",
                )
            raise PermanentError(
                f"{where} refused: ErrorCode {code}: {description or 'no description'}"
                f"{f' (status {status})' if status else ''}",
                reason="hub_refused",
            )
        return answer


def succeeded(answer: dict[str, Any]) -> bool:
    """As the SDK reads an answer: ``ErrorCode`` "0" decides; ``status``, when present,
    must be OK. An answer with only ``status: OK`` (no ErrorCode) also succeeds."""
    status = answer.get("status")
    if status is not None and _text(status).strip().upper() != "OK":
        return False
    if "ErrorCode" in answer:
        return _text(answer.get("ErrorCode")).strip() == "0"
    return status is not None


def _describe(response: http_edge.Reply) -> str:
    """The hub's own words in an error answer (JSON ErrorCode/status/ErrorDesc), if any."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no description"
    if isinstance(body, dict):
        desc = body.get("ErrorDesc") or body.get("error") or body.get("message") or ""
        code = body.get("ErrorCode")
        text = f"ErrorCode {code}: {desc}" if code not in (None, "") else str(desc)
        return text[: http_edge.MAX_DESCRIPTION] or response.reason_phrase or "no description"
    return response.reason_phrase or "no description"


_data_list = http_edge.entries


_text = http_edge.text
