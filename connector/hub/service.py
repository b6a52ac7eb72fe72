"""The hub's VXP protocol (interconnect.md §1), independent of HTTP.

It accepts what the official SDK sends (``../shared/interop/vxp-wire/``): ``sendEdoc``
with the package as the raw body (any non-multipart Content-Type, the SDK's
``application/octet-stream``) or as a multipart ``file_doc`` part; ``hash-file`` in the
SDK's hex or the standard one, of the body or of its lines re-joined (the SDK uploads
them with CRLF); ``docId`` or ``docid``; a timestamp in Vietnam time or UTC.

Authentication (``authenticate``: the XroadVnpt HMAC headers and the timestamp window)
uses the headers only, so the server runs it before it reads a body. The account is bound
to one OrganId, so a ``from`` parameter that is not the caller's OrganId gets HTTP 403.
Routing is ``routing.Router``'s (documented there); the optional ``to`` parameter is a
JSON array of OrganIds that may only narrow the package's own recipients.

ErrorCodes (HTTP 200, ``status: "FAIL"``): the router's 1001-1099, 1004 hash-file does not
match, 1404 unknown docId for this agency. Malformed requests get HTTP 400 (ErrorCode
1000), unknown paths 404, oversized files 413, authentication failures 401.

This module must not do HTTP or sleep; fault *timing* belongs to the server.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Protocol

from connector.hub.config import Account, HubConfig
from connector.hub.faults import FaultInjector
from connector.hub.multipart import boundary_of, parse_multipart
from connector.hub.routing import Router, parse_recipients
from connector.hub.store import Delivery, HubStore
from connector.interconnect import vxp_wire
from connector.interconnect.credentials import Secret
from connector.timeutil import VN_TZ

log = logging.getLogger(__name__)

MESSAGE_TYPES = ("edoc", "status")


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: Any  # JSON-serialisable
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its account and the parameters its signature covers."""

    account: Account
    params: dict[str, str] = field(default_factory=dict)


class Api(Protocol):
    """One protocol the emulator speaks; the server applies faults around ``serve``."""

    def methods(self, call: str) -> tuple[str, ...]: ...

    def authenticate(self, call: str, headers: Message) -> Caller:
        """Who calls, from the headers alone (no body read yet); raises ``Refused``."""
        ...

    def serve(
        self,
        call: str,
        caller: Caller,
        headers: Message,
        body: bytes,
        query: dict[str, list[str]],
    ) -> tuple[Answer, str]:
        """The answer and the caller's systemid; raises ``Refused`` to stop early."""
        ...

    def failure(self, code: str, description: str, http_status: int) -> Answer: ...


def ok(**extra: Any) -> Answer:
    return Answer(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **extra})


def fail(code: str, desc: str, http_status: int = 200) -> Answer:
    return Answer(http_status, {"status": "FAIL", "ErrorCode": code, "ErrorDesc": desc})


class Refused(Exception):
    """The request ends here with ``answer`` (used for authentication and bad requests)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(str(answer.http_status))
        self.answer = answer


class VxpService:
    def __init__(self, config: HubConfig, store: HubStore, faults: FaultInjector) -> None:
        self.config = config
        self.store = store
        self.faults = faults
        self.accounts: dict[str, tuple[Account, Secret]] = {
            a.systemid: (a, a.resolve_secret()) for a in config.accounts
        }
        self.router = Router(config, store, faults)
        self._window = dt.timedelta(seconds=config.timestamp_window_seconds)

    # -- Api ------------------------------------------------------------------------------

    def methods(self, call: str) -> tuple[str, ...]:
        return ("POST",)

    def failure(self, code: str, description: str, http_status: int) -> Answer:
        return fail(code, description, http_status)

    def serve(
        self,
        call: str,
        caller: Caller,
        headers: Message,
        body: bytes,
        query: dict[str, list[str]],
    ) -> tuple[Answer, str]:
        account, params = caller.account, caller.params
        files: dict[str, bytes] = {}
        if call == "sendEdoc":
            boundary = boundary_of(headers.get("Content-Type") or "")
            files = parse_multipart(body, boundary) if boundary else {"file_doc": body}
            data = files.get("file_doc")
            limit = self.config.max_package_bytes
            if data is not None and len(data) > limit:
                raise Refused(fail("413", f"file_doc larger than {limit} bytes", 413))
        return self.handle(call, account, params, files), account.systemid

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, call: str, headers: Message) -> Caller:
        account, params = self.verify_headers(headers.get, list(headers.keys()))
        return Caller(account, params)

    def verify_headers(
        self, get_header: Callable[[str], str | None], header_names: Iterable[str]
    ) -> tuple[Account, dict[str, str]]:
        try:
            verified = vxp_wire.verify(
                get_header,
                header_names,
                secret_for=self._secret_for,
                now=dt.datetime.now(VN_TZ),
                window=self._window,
            )
        except vxp_wire.SignatureRefused as exc:
            log.info("hub: request refused (%s): %s", exc.reason, exc)
            raise Refused(fail("401", f"unauthorized: {exc}", 401)) from None
        account, _secret = self.accounts[verified.systemid]
        return account, verified.params

    def _secret_for(self, systemid: str) -> Secret | None:
        found = self.accounts.get(systemid)
        return found[1] if found else None

    # -- calls ----------------------------------------------------------------------------

    def handle(
        self, call: str, account: Account, params: dict[str, str], files: dict[str, bytes]
    ) -> Answer:
        if call == "sendEdoc":
            return self.send_edoc(account, params, files)
        if call == "getReceivedEdocList":
            return self.received_list(account, params)
        if call == "getEdoc":
            return self.get_edoc(account, params)
        if call == "updateStatus":
            return self.update_status(account, params)
        if call == "getSentEdocList":
            return self.sent_list(account, params)
        if call == "getAgenciesList":
            return ok(data=self.router.directory())
        return fail("404", f"unknown call {call!r}", 404)

    def send_edoc(
        self, account: Account, params: dict[str, str], files: dict[str, bytes]
    ) -> Answer:
        sender = _required(params, "from")
        message_type = _message_type(params)
        claimed_hash = _required(params, "hash-file")
        if sender not in account.organ_ids:
            return fail(
                "403",
                f"account {account.systemid} may send only as {', '.join(account.organ_ids)}, "
                f"not {sender}",
                403,
            )
        data = files.get("file_doc")
        if data is None:
            return fail("1000", "multipart part 'file_doc' is missing", 400)
        if not vxp_wire.file_hash_matches(data, claimed_hash):
            return fail("1004", "hash-file does not match the SHA-256 of the uploaded file")
        requested, problem = parse_recipients(params.get("to"))
        if problem:
            return fail("1005", problem)
        outcome = self.router.accept(
            sender=sender,
            systemid=account.systemid,
            message_type=message_type,
            data=data,
            requested=requested,
        )
        if outcome.doc_id is None:
            return fail(outcome.code, outcome.description)
        return ok(DocId=outcome.doc_id)

    def received_list(self, account: Account, params: dict[str, str]) -> Answer:
        message_type = _message_type(params)
        data: list[dict[str, Any]] = []
        listed = [i for o in account.organ_ids for i in self.store.inbox(o, message_type)]
        for item in listed:
            entry = {
                "docId": item.delivery_id,
                "serviceType": "eDoc",
                "messageType": item.message_type,
                "created_time": item.created_at,
                "updated_time": item.updated_at,
                "from": item.sender,
                "to": item.recipient,
                "status": "initial",
                "status_desc": "waiting to be fetched",
            }
            data.append(entry)
            if self.faults.chance("duplicate_list_rate"):
                data.append(dict(entry))
        return ok(data=data)

    def _delivery(self, account: Account, delivery_id: str) -> Delivery | None:
        """A delivery to one of the account's OrganIds (a platform account has several)."""
        found = self.store.delivery(delivery_id)
        return found if found is not None and found.recipient in account.organ_ids else None

    def get_edoc(self, account: Account, params: dict[str, str]) -> Answer:
        delivery_id = _doc_id(params)
        item = self._delivery(account, delivery_id)
        package = self.store.package(item.doc_id) if item else None
        if package is None:
            return fail("1404", f"no document {delivery_id} for {account.organ_id}")
        return ok(data=base64.b64encode(package.data).decode("ascii"))

    def update_status(self, account: Account, params: dict[str, str]) -> Answer:
        delivery_id = _doc_id(params)
        status = _required(params, "status")
        if status not in ("done", "fail"):
            raise Refused(fail("1000", f"status must be done or fail, not {status!r}", 400))
        before = self._delivery(account, delivery_id)
        if before is None:
            return fail("1404", f"no document {delivery_id} for {account.organ_id}")
        after = self.store.settle(delivery_id, before.recipient, status == "done")
        if (
            before.state == "pending"
            and after is not None
            and after.state == "done"
            and self.faults.chance("duplicate_delivery_rate")
        ):
            self.store.redeliver(delivery_id)
        return ok()

    def sent_list(self, account: Account, params: dict[str, str]) -> Answer:
        message_type = _message_type(params)
        data = [
            {
                "senderDocId": d.doc_id,
                "receiverDocId": d.delivery_id,
                "fromCode": d.sender,
                "toCode": d.recipient,
                "messageType": d.message_type,
                "documentId": d.document_id,
                "sendStatus": "sent",
                "receiveStatus": d.state,
                "created_time": d.created_at,
                "updated_time": d.updated_at,
            }
            for organ_id in account.organ_ids
            for d in self.store.deliveries(sender=organ_id)
            if d.message_type == message_type
        ]
        return ok(data=data)


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise Refused(fail("1000", f"signed parameter {name!r} is missing", 400))
    return value


def _doc_id(params: dict[str, str]) -> str:
    """``docId`` (the SDK's getEdoc) or ``docid`` (its updateStatus): either on either call."""
    return params.get("docId") or _required(params, "docid")


def _message_type(params: dict[str, str]) -> str:
    value = _required(params, "messagetype").lower()
    if value not in MESSAGE_TYPES:
        raise Refused(fail("1000", f"messagetype must be edoc or status, not {value!r}", 400))
    return value
