"""The hub's VXP behaviour, independent of HTTP: authentication, routing, inboxes, directory.

Routing (sendEdoc):

* an ``edoc`` package goes to every OrganId in its own ``To`` list. The optional ``to``
  parameter (a JSON array of OrganIds) can only *narrow* that: each OrganId it names must
  be one of the package's recipients, and the package then goes to those only. The package
  is what its recipients read, so a header may never route it to someone it does not name.
* a ``status`` package goes to ``ResponseFor/OrganId``, the original sender of the
  document; a ``to`` parameter, if present, must name exactly that OrganId.
* the caller's account is bound to one OrganId: the ``from`` parameter must be it (else
  HTTP 403), and so must the package's ``From/OrganId`` (else ErrorCode 1003).
* recipients must be in the directory unless ``accept_unknown_recipients`` is set.
* a resend of identical bytes by the same sender and message type is answered with the
  original DocId and is not delivered again (the package is recognised by its SHA-256).

ErrorCodes (HTTP 200, ``status: "FAIL"``) for refused packages and ids:
1001 not edXML / routing facts missing, 1002 messagetype differs from the package's kind,
1003 From/OrganId is not the caller, 1004 hash-file does not match, 1005 recipients wrong
(none, or ``to`` outside the package's own), 1006 recipient not in the directory,
1099 (default) refused by a configured rule, 1404 unknown docId for this agency.
Malformed requests get HTTP 400 (ErrorCode 1000), unknown paths 404, oversized files 413,
authentication failures 401, a ``from`` that is not the caller's OrganId 403.

This module must not do HTTP or sleep; fault *timing* belongs to the server.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.errors import PermanentError
from connector.hub.config import Account, HubConfig
from connector.hub.faults import FaultInjector
from connector.hub.store import HubStore
from connector.interconnect import vxp_wire
from connector.interconnect.credentials import Secret
from connector.timeutil import VN_TZ

log = logging.getLogger(__name__)

MESSAGE_TYPES = ("edoc", "status")


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def ok(**extra: Any) -> Answer:
    return Answer(200, {"status": "OK", "ErrorCode": "0", "ErrorDesc": "", **extra})


def fail(code: str, desc: str, http_status: int = 200) -> Answer:
    return Answer(http_status, {"status": "FAIL", "ErrorCode": code, "ErrorDesc": desc})


class Refused(Exception):
    """The request ends here with ``answer`` (used for authentication and bad requests)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.get("ErrorDesc", ""))
        self.answer = answer


class VxpService:
    def __init__(self, config: HubConfig, store: HubStore, faults: FaultInjector) -> None:
        self.config = config
        self.store = store
        self.faults = faults
        self._accounts: dict[str, tuple[Account, Secret]] = {
            a.systemid: (a, a.resolve_secret()) for a in config.accounts
        }
        self._window = dt.timedelta(seconds=config.timestamp_window_seconds)

    # -- authentication -------------------------------------------------------------------

    def authenticate(
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
        account, _secret = self._accounts[verified.systemid]
        return account, verified.params

    def _secret_for(self, systemid: str) -> Secret | None:
        found = self._accounts.get(systemid)
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
            return ok(data=self.directory())
        return fail("404", f"unknown call {call!r}", 404)

    def send_edoc(
        self, account: Account, params: dict[str, str], files: dict[str, bytes]
    ) -> Answer:
        sender = _required(params, "from")
        message_type = _message_type(params)
        claimed_hash = _required(params, "hash-file")
        if sender != account.organ_id:
            return fail(
                "403",
                f"account {account.systemid} may send only as {account.organ_id}, not {sender}",
                403,
            )
        data = files.get("file_doc")
        if data is None:
            return fail("1000", "multipart part 'file_doc' is missing", 400)
        if not vxp_wire.file_hash_matches(data, claimed_hash):
            return fail("1004", "hash-file does not match the SHA-256 of file_doc")
        from connector.edxml import peek  # the edXML layer is needed only when routing

        try:
            summary = peek(data)
        except PermanentError as exc:
            return fail("1001", f"file_doc is not a routable edXML package: {exc}"[:500])
        if summary.kind != message_type:
            return fail("1002", f"messagetype is {message_type} but the package is {summary.kind}")
        if summary.from_organ_id != sender:
            return fail(
                "1003",
                f"package From/OrganId {summary.from_organ_id} is not the sender {sender}",
            )
        if summary.kind == "status":
            named: tuple[str, ...] = (
                (summary.response_for_organ_id,) if summary.response_for_organ_id else ()
            )
        else:
            named = tuple(summary.to_organ_ids)
        recipients, problem = _route(named, params.get("to"))
        if problem:
            return fail("1005", problem)
        if not self.config.accept_unknown_recipients:
            known = self.known_organ_ids()
            unknown = [r for r in recipients if r not in known]
            if unknown:
                return fail("1006", f"recipient(s) not in the directory: {', '.join(unknown)}")
        rule = self.faults.refusal(
            document_id=summary.document_id, sender=sender, message_type=message_type
        )
        if rule is not None:
            return fail(rule.error_code, rule.description)
        doc_id, new = self.store.accept(
            sender=sender,
            systemid=account.systemid,
            message_type=message_type,
            sha256=hashlib.sha256(data).hexdigest(),
            document_id=summary.document_id,
            priority=summary.priority,
            status_code=summary.status_code,
            data=data,
            recipients=recipients,
        )
        log.info(
            "hub: %s %s from %s to %s: DocId %s%s",
            message_type,
            summary.document_id,
            sender,
            ",".join(recipients),
            doc_id,
            "" if new else " (resend recognised)",
        )
        return ok(DocId=doc_id)

    def received_list(self, account: Account, params: dict[str, str]) -> Answer:
        message_type = _message_type(params)
        data: list[dict[str, Any]] = []
        for item in self.store.inbox(account.organ_id, message_type):
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

    def get_edoc(self, account: Account, params: dict[str, str]) -> Answer:
        delivery_id = _required(params, "docId")
        item = self.store.delivery(delivery_id, account.organ_id)
        package = self.store.package(item.doc_id) if item else None
        if package is None:
            return fail("1404", f"no document {delivery_id} for {account.organ_id}")
        return ok(data=base64.b64encode(package.data).decode("ascii"))

    def update_status(self, account: Account, params: dict[str, str]) -> Answer:
        delivery_id = params.get("docid") or _required(params, "docId")
        status = _required(params, "status")
        if status not in ("done", "fail"):
            raise Refused(fail("1000", f"status must be done or fail, not {status!r}", 400))
        before = self.store.delivery(delivery_id, account.organ_id)
        if before is None:
            return fail("1404", f"no document {delivery_id} for {account.organ_id}")
        after = self.store.settle(delivery_id, account.organ_id, status == "done")
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
            for d in self.store.deliveries(sender=account.organ_id)
            if d.message_type == message_type
        ]
        return ok(data=data)

    # -- directory ------------------------------------------------------------------------

    def directory(self) -> list[dict[str, str]]:
        entries = [
            {"id": e.id or e.code, "code": e.code, "name": e.name, "mail": e.mail, "pid": e.pid}
            for e in self.config.directory
        ]
        listed = {e.code for e in self.config.directory}
        for account in self.config.accounts:
            if account.organ_id not in listed:
                listed.add(account.organ_id)
                entries.append(
                    {
                        "id": account.organ_id,
                        "code": account.organ_id,
                        "name": account.organ_id,
                        "mail": "",
                        "pid": "",
                    }
                )
        return entries

    def known_organ_ids(self) -> set[str]:
        return {e.code for e in self.config.directory} | {a.organ_id for a in self.config.accounts}


def _route(named: tuple[str, ...], to_param: str | None) -> tuple[list[str], str | None]:
    recipients = list(dict.fromkeys(named))
    if not recipients:
        return [], "the package names no recipient"
    if to_param is None or to_param.strip() == "":
        return recipients, None
    try:
        requested = json.loads(to_param)
    except ValueError:
        requested = to_param
    if isinstance(requested, str):
        requested = [requested]
    if not isinstance(requested, list) or not all(isinstance(r, str) for r in requested):
        return [], "parameter 'to' must be a JSON array of OrganIds"
    outside = [r for r in requested if r not in recipients]
    if outside:
        return [], (
            f"'to' names {', '.join(outside)}, which the package does not address; 'to' may "
            "only narrow the package's own recipients"
        )
    narrowed = list(dict.fromkeys(requested))
    return (narrowed, None) if narrowed else ([], "parameter 'to' is empty")


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise Refused(fail("1000", f"signed parameter {name!r} is missing", 400))
    return value


def _message_type(params: dict[str, str]) -> str:
    value = _required(params, "messagetype").lower()
    if value not in MESSAGE_TYPES:
        raise Refused(fail("1000", f"messagetype must be edoc or status, not {value!r}", 400))
    return value
