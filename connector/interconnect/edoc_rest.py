"""The eDoc REST v2 client (interconnect.md §2, Bkav provincial hubs): a ``HubTransport``.

Where the knowledge comes from: the vendor's notes and sample code summarised in
interconnect.md §2 -- unlike VXP, no captured client shows what a Bkav hub takes on the
wire. The points the notes leave open are therefore settings (``EdocRestSettings``) whose
defaults are the notes' reading, documented in docs/hub-protocol.md:

* body form of ``sendDocument``: ``upload="raw"`` (the ``.edxml`` as the body,
  ``Content-Type: application/xml``) or ``"multipart"`` (one part named ``file_part``);
* header names: ``organ_header`` ("organid"), ``token_header`` ("authorization"),
  ``hash_header`` ("hash-edoc"), ``type_header`` ("type"), ``docid_header`` ("docid");
* the hash form: ``hash_form="standard"`` (64-character hex) or ``"sdk"`` (the VXP SDK's
  hex without zero padding).

Every request carries ``organid`` (our OrganId) and ``authorization`` (the token the hub
issued, a ``Secret``). Success is HTTP 2xx with ``code == "0"``; HTTP 401 (``code 9999``)
is a configuration problem; other failures are classified by ``http_edge``.

Differences from VXP that callers should know:

* there is no recipient parameter: the hub routes by the package itself, so ``to`` is
  accepted for the contract's sake and ignored;
* ``getDocument`` needs the package type: the client remembers it from ``pending()``
  (fetching an id never listed assumes EDOC);
* there is no negative acknowledgement: ``acknowledge(doc_id, ok=False)`` also confirms
  receipt (the hub stops listing it); the refusal itself travels as a status 02 package;
* the hub may answer ``sendDocument`` without an id; the client then returns
  ``sha256:<hex>`` of the package so the caller still has a stable reference.

No retries and no metrics here (they are written once around every transport).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from connector.errors import ConfigurationError, PermanentError
from connector.interconnect import http_edge, vxp_wire
from connector.interconnect.base import Agency, MessageType, PendingItem
from connector.interconnect.credentials import Secret

log = logging.getLogger(__name__)

_WIRE_TYPES = {"edoc": "EDOC", "status": "STATUS"}


@dataclass(frozen=True)
class EdocRestSettings:
    """How to reach an eDoc REST v2 hub. The token is a ``Secret``, never text."""

    endpoint: str  # the service base, e.g. "https://edoc.example.gov.vn/EdocService"
    organ_id: str  # our OrganId, sent as the ``organid`` header
    token: Secret
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_key_password: Secret | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    max_connections: int = 4
    user_agent: str = "edoc-connector/0.1 (eDoc REST v2)"
    allow_plain_http: bool = False
    max_answer_bytes: int = http_edge.DEFAULT_MAX_ANSWER_BYTES
    # The wire's variable points (from notes, not a captured client: see the module doc).
    upload: Literal["raw", "multipart"] = "raw"
    file_part: str = "file"
    hash_form: Literal["standard", "sdk"] = "standard"
    organ_header: str = "organid"
    token_header: str = "authorization"
    hash_header: str = "hash-edoc"
    type_header: str = "type"
    docid_header: str = "docid"


class EdocRestClient:
    """One eDoc REST v2 account. Thread-safe; close it at shutdown."""

    def __init__(
        self, settings: EdocRestSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._settings = settings
        edge = http_edge.open_edge(settings, transport)
        self._edge = edge
        self._http, self._base, self._where = edge.http, edge.base, edge.where
        self._types: dict[str, MessageType] = {}
        self._types_lock = threading.Lock()

    def send(
        self,
        package: bytes,
        *,
        message_type: MessageType,
        sender: str,
        to: Sequence[str] = (),
    ) -> str:
        if sender != self._settings.organ_id:
            raise ConfigurationError(
                f"this eDoc account is {self._settings.organ_id}; it cannot send as {sender}",
                reason="hub_forbidden",
            )
        wire = self._settings
        digest = vxp_wire.file_hash(package)
        claimed = vxp_wire.sdk_file_hash(package) if wire.hash_form == "sdk" else digest
        headers = {wire.type_header: _WIRE_TYPES[message_type], wire.hash_header: claimed}
        if wire.upload == "multipart":
            files = {wire.file_part: ("package.edxml", package, "application/xml")}
            answer = self._call("POST", "sendDocument", headers, files=files)
        else:
            headers["Content-Type"] = "application/xml"
            answer = self._call("POST", "sendDocument", headers, content=package)
        doc_id = _first(answer, "docId", "DocId", "docid", "id")
        if doc_id is None and isinstance(answer.get("data"), (str, int)):
            doc_id = answer["data"]
        return str(doc_id) if doc_id not in (None, "") else f"sha256:{digest}"

    def pending(self, message_type: MessageType) -> list[PendingItem]:
        answer = self._call(
            "GET",
            "getPendingDocIds",
            {self._settings.type_header: _WIRE_TYPES[message_type]},
            want_list=True,
        )
        items = []
        for entry in _entries(answer, "getPendingDocIds", self._where):
            doc_id = _first(entry, "docId", "docid", "DocId", "id")
            if doc_id in (None, ""):
                log.warning("hub %s listed an entry without docId; skipped", self._where)
                continue
            items.append(
                PendingItem(
                    doc_id=str(doc_id),
                    message_type=message_type,
                    sender=http_edge.text(_first(entry, "organId", "organid", "from")),
                    recipient=self._settings.organ_id,
                )
            )
        with self._types_lock:
            self._types.update((item.doc_id, message_type) for item in items)
        return items

    def fetch(self, doc_id: str) -> bytes:
        with self._types_lock:
            kind = self._types.get(doc_id, "edoc")
        wire = self._settings
        answer = self._call(
            "POST", "getDocument", {wire.docid_header: doc_id, wire.type_header: _WIRE_TYPES[kind]}
        )
        return http_edge.document_bytes(
            answer, where=self._where, call="getDocument", doc_id=doc_id
        )

    def acknowledge(self, doc_id: str, ok: bool) -> None:
        if not ok:
            log.info("eDoc REST v2 has no negative acknowledgement; confirming %s", doc_id)
        self._call("POST", "confirmReceived", {self._settings.docid_header: doc_id})
        with self._types_lock:
            self._types.pop(doc_id, None)

    def directory(self) -> list[Agency]:
        answer = self._call(
            "GET",
            "getOrganizations",
            {},
            params={"organId": self._settings.organ_id},
            want_list=True,
        )
        agencies = []
        for entry in _entries(answer, "getOrganizations", self._where):
            code = http_edge.text(_first(entry, "organId", "code", "OrganId"))
            if code:
                agencies.append(
                    Agency(
                        organ_id=code,
                        name=http_edge.text(_first(entry, "organName", "name")),
                        mail=http_edge.text(_first(entry, "email", "mail")),
                        parent_id=http_edge.text(_first(entry, "parentId", "pid")),
                        hub_id=http_edge.text(entry.get("id")),
                    )
                )
        return agencies

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EdocRestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        call: str,
        headers: dict[str, str],
        *,
        content: bytes | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        params: dict[str, str] | None = None,
        want_list: bool = False,
    ) -> dict[str, Any]:
        where = f"hub {self._where} {call}"
        all_headers = {
            self._settings.organ_header: self._settings.organ_id,
            self._settings.token_header: self._settings.token.reveal().decode("utf-8"),
            **headers,
        }
        request: dict[str, Any] = {"headers": all_headers, "params": params}
        if files is not None:
            request["files"] = files
        else:
            request["content"] = content
        response = self._edge.exchange(method, f"{self._base}/{call}", where=where, **request)
        http_edge.check_status(where, response, _describe)
        if want_list:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, list):
                return {"code": "0", "data": body}
        answer = http_edge.json_object(where, response)
        code = http_edge.text(answer.get("code", "0"))
        if code != "0":
            raise PermanentError(
                f"{where} refused: code {code}: {_errors(answer) or 'no description'}",
                reason="hub_refused",
            )
        return answer


def _first(entry: dict[str, Any], *names: str) -> Any:
    for name in names:
        if entry.get(name) not in (None, ""):
            return entry[name]
    return None


_entries = http_edge.entries


def _errors(answer: dict[str, Any]) -> str:
    errors = answer.get("errors") or answer.get("message") or ""
    text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
    return text[: http_edge.MAX_DESCRIPTION]


def _describe(response: http_edge.Reply) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no description"
    if isinstance(body, dict):
        return f"code {body.get('code', '?')}: {_errors(body)}"
    return response.reason_phrase or "no description"
