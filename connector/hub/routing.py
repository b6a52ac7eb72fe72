"""What the hub does with a package, whatever protocol brought it: check, route, store.

Routing rules (both protocols):

* an ``edoc`` package goes to every OrganId in its own ``To`` list. An optional list of
  OrganIds from the request (VXP's ``to`` parameter) can only *narrow* that: each one must
  be a recipient the package names, and the package then goes to those only. The package
  is what its recipients read, so a header may never route it to someone it does not name.
* a ``status`` package goes to ``ResponseFor/OrganId``, the original sender of the
  document; a requested list, if given, must name exactly that OrganId. The national
  axis' own recall request (status 13, sent by the document's sender) names the addressee
  there, so the same rule routes it. A status whose ResponseFor/OrganId is the sender
  itself (a 13 written by the spec's letter) goes to the requested OrganIds, or else to
  every recipient the hub delivered that document to.
* the package's ``From/OrganId`` must be the calling account's OrganId.
* recipients must be in the directory unless ``accept_unknown_recipients`` is set.
* a resend of identical bytes by the same sender and message type is answered with the
  original DocId and is not delivered again (recognised by SHA-256 of the bytes).
* configured refusal rules (faults.refuse) refuse matching packages for good.

Refusal codes: 1001 not edXML / routing facts missing, 1002 declared type differs from
the package's kind, 1003 From/OrganId is not the caller, 1005 recipients wrong (none, or
outside the package's own), 1006 recipient not in the directory, 1099 (default) a
configured rule. This module must not know about HTTP or either protocol's answer shapes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from connector.errors import PermanentError
from connector.hub.config import HubConfig
from connector.hub.faults import FaultInjector
from connector.hub.store import HubStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """``doc_id`` when accepted (``new`` False for a recognised resend), else a refusal."""

    doc_id: str | None = None
    new: bool = False
    code: str = "0"
    description: str = ""


class Router:
    def __init__(self, config: HubConfig, store: HubStore, faults: FaultInjector) -> None:
        self.config = config
        self.store = store
        self.faults = faults

    def accept(
        self,
        *,
        sender: str,
        systemid: str,
        message_type: str,
        data: bytes,
        requested: list[str] | None = None,
    ) -> Outcome:
        from connector.edxml import peek  # the edXML layer is needed only when routing

        try:
            summary = peek(data)
        except PermanentError as exc:
            return Outcome(code="1001", description=f"not a routable edXML package: {exc}"[:500])
        if summary.kind != message_type:
            return Outcome(
                code="1002",
                description=f"declared {message_type} but the package is {summary.kind}",
            )
        if summary.from_organ_id != sender:
            return Outcome(
                code="1003",
                description=f"package From/OrganId {summary.from_organ_id} is not the sender "
                f"{sender}",
            )
        if summary.kind == "status" and summary.response_for_organ_id == sender:
            # The original sender reporting on its own document (13, recall request) writes
            # to the document's recipients: those asked for, else those the hub delivered to.
            named: tuple[str, ...] = tuple(
                requested or self.store.recipients_of(sender, summary.document_id)
            )
        elif summary.kind == "status":
            named = (summary.response_for_organ_id,) if summary.response_for_organ_id else ()
        else:
            named = tuple(summary.to_organ_ids)
        recipients, problem = route(named, requested)
        if problem:
            return Outcome(code="1005", description=problem)
        if not self.config.accept_unknown_recipients:
            known = self.known_organ_ids()
            unknown = [r for r in recipients if r not in known]
            if unknown:
                return Outcome(
                    code="1006",
                    description=f"recipient(s) not in the directory: {', '.join(unknown)}",
                )
        rule = self.faults.refusal(
            document_id=summary.document_id, sender=sender, message_type=message_type
        )
        if rule is not None:
            return Outcome(code=rule.error_code, description=rule.description)
        doc_id, new = self.store.accept(
            sender=sender,
            systemid=systemid,
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
        return Outcome(doc_id=doc_id, new=new)

    def directory(self) -> list[dict[str, str]]:
        """The directory from config, plus every account's OrganId it does not list."""
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
        return {e.code for e in self.config.directory} | {
            o for a in self.config.accounts for o in a.organ_ids}


def parse_recipients(text: str | None) -> tuple[list[str] | None, str | None]:
    """Requested recipients from a JSON array (or one bare OrganId); (None, None) if absent."""
    if text is None or text.strip() == "":
        return None, None
    try:
        value = json.loads(text)
    except ValueError:
        value = text.strip()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None, "the recipient list must be a JSON array of OrganIds"
    return value, None


def route(named: tuple[str, ...], requested: list[str] | None) -> tuple[list[str], str | None]:
    recipients = list(dict.fromkeys(named))
    if not recipients:
        return [], "the package names no recipient"
    if requested is None:
        return recipients, None
    outside = [r for r in requested if r not in recipients]
    if outside:
        return [], (
            f"'to' names {', '.join(outside)}, which the package does not address; 'to' may "
            "only narrow the package's own recipients"
        )
    narrowed = list(dict.fromkeys(requested))
    return (narrowed, None) if narrowed else ([], "the requested recipient list is empty")
