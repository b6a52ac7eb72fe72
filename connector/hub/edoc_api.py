"""The hub's eDoc REST v2 protocol (interconnect.md §2, the Bkav provincial hub), without HTTP.

Every request carries ``organid`` (the caller's OrganId) and ``authorization`` (the token
the hub issued). In the emulator the token of an account is its secret (``secret_env`` /
``secret_file``), optionally prefixed ``Bearer ``. Missing or bad credentials get HTTP 401
with ``{"code":"9999","status":"False","errors":[...]}``.

Answers: success ``{"code":"0","status":"True",...}``; refusals ``{"code":<router code>,
"status":"False","errors":[description]}`` with HTTP 200. ``getPendingDocIds`` answers a
JSON array of ``{docId, organId}`` (organId = the sender), as the vendor's documentation
shows. Routing, resend recognition and refusal rules are the router's, shared with VXP;
REST v2 has no recipient parameter and no negative acknowledgement (``confirmReceived``
removes a package from the caller's list). ``sendDocument`` takes the package as the raw
body or as the first part of a multipart body, with ``hash-edoc`` in the standard or the
SDK's hex. Credentials are checked from the headers alone, before the server reads a
body. This module must not do HTTP or sleep.
"""

from __future__ import annotations

import base64
import hmac
from email.message import Message
from typing import Any

from connector.hub.config import Account
from connector.hub.multipart import boundary_of, parse_multipart
from connector.hub.routing import Router
from connector.hub.service import Answer, Caller, Refused
from connector.interconnect import vxp_wire
from connector.interconnect.credentials import Secret

_TYPES = {"EDOC": "edoc", "STATUS": "status"}


def rest_ok(**extra: Any) -> Answer:
    return Answer(200, {"code": "0", "status": "True", **extra})


def rest_fail(code: str, description: str, http_status: int = 200) -> Answer:
    return Answer(http_status, {"code": code, "status": "False", "errors": [description]})


class EdocRestService:
    def __init__(self, router: Router, accounts: dict[str, tuple[Account, Secret]]) -> None:
        self.router = router
        self.store = router.store
        self._accounts = list(accounts.values())

    def methods(self, call: str) -> tuple[str, ...]:
        return ("GET",) if call in ("getPendingDocIds", "getOrganizations") else ("POST",)

    def failure(self, code: str, description: str, http_status: int) -> Answer:
        return rest_fail(code, description, http_status)

    def authenticate(self, call: str, headers: Message) -> Caller:
        return Caller(self._authenticate(headers))

    def serve(
        self,
        call: str,
        caller: Caller,
        headers: Message,
        body: bytes,
        query: dict[str, list[str]],
    ) -> tuple[Answer, str]:
        account = caller.account
        if call == "sendDocument":
            return self._send(account, headers, body), account.systemid
        if call == "getPendingDocIds":
            kind = _type(headers)
            pending = [
                {"docId": d.delivery_id, "organId": d.sender}
                for d in self.store.inbox(account.organ_id, kind)
            ]
            return Answer(200, pending), account.systemid
        if call == "getDocument":
            doc_id = _header(headers, "docid")
            item = self.store.delivery(doc_id, account.organ_id)
            package = self.store.package(item.doc_id) if item else None
            if package is None or (headers.get("type") and package.message_type != _type(headers)):
                return rest_fail("1404", f"no document {doc_id} for {account.organ_id}"), ""
            data = base64.b64encode(package.data).decode("ascii")
            return rest_ok(data=data), account.systemid
        if call == "confirmReceived":
            doc_id = _header(headers, "docid")
            if self.store.settle(doc_id, account.organ_id, ok=True) is None:
                return rest_fail("1404", f"no document {doc_id} for {account.organ_id}"), ""
            return rest_ok(), account.systemid
        if call == "getOrganizations":
            organizations = [
                {
                    "organId": e["code"],
                    "organName": e["name"],
                    "email": e["mail"],
                    "parentId": e["pid"],
                }
                for e in self.router.directory()
            ]
            return rest_ok(data=organizations), account.systemid
        return rest_fail("404", f"unknown call {call!r}", 404), account.systemid

    def _send(self, account: Account, headers: Message, body: bytes) -> Answer:
        kind = _type(headers)
        claimed = _header(headers, "hash-edoc")
        boundary = boundary_of(headers.get("Content-Type") or "")
        if boundary is not None:
            parts = list(parse_multipart(body, boundary).values())
            if not parts:
                return rest_fail("1000", "the multipart body has no part", 400)
            body = parts[0]
        if len(body) > self.router.config.max_package_bytes:
            return rest_fail("413", "document too large", 413)
        if not vxp_wire.file_hash_matches(body, claimed):
            return rest_fail("1004", "hash-edoc does not match the SHA-256 of the body")
        outcome = self.router.accept(
            sender=account.organ_id, systemid=account.systemid, message_type=kind, data=body
        )
        if outcome.doc_id is None:
            return rest_fail(outcome.code, outcome.description)
        return rest_ok(docId=outcome.doc_id)

    def _authenticate(self, headers: Message) -> Account:
        organ_id = (headers.get("organid") or "").strip()
        token = (headers.get("authorization") or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if organ_id and token:
            for account, secret in self._accounts:
                if account.organ_id == organ_id and hmac.compare_digest(
                    token.encode("utf-8"), secret.reveal()
                ):
                    return account
        raise Refused(
            Answer(
                401,
                {"code": "9999", "status": "False", "errors": ["missing or invalid credentials"]},
            )
        )


def _header(headers: Message, name: str) -> str:
    value = (headers.get(name) or "").strip()
    if not value:
        raise Refused(rest_fail("1000", f"header {name!r} is missing", 400))
    return value


def _type(headers: Message) -> str:
    value = _header(headers, "type").upper()
    if value not in _TYPES:
        raise Refused(rest_fail("1000", f"type must be EDOC or STATUS, not {value!r}", 400))
    return _TYPES[value]
