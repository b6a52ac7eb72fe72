"""Attacker text never reaches B's logs, events or deliveries unescaped (line breaks, bidi).

Carriers an attacker controls in a package delivered by a compromised hub: the subject of a
certificate it made itself (XML signer, seal on the main document), ContentId and attachment
names, the From OrganId, the DocumentId, the Subject. Each is filled with text that would
forge a log line (CR, LF, NEL, U+2028) or reorder what a terminal shows (U+202E); the
package goes through B's whole inbound pipeline and every log record, event detail, error and
delivery header B produced is checked.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from connector.daemon import inbound
from connector.daemon.wiring import Runtime
from connector.edxml import build_package
from connector.store.states import Direction
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import StampOptions, seal_pdf, sign_pdf
from connector.trust.xmldsig import sign_package
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, world  # noqa: F401
from tests.hostile.trust_kit import (
    A_ID,
    B_ID,
    Kit,
    document,
    list_for_b,
    packaged,
    pdf,
    self_signed,
)

FORGED_LINE = "2026-12-07T09:00:00+07:00 ERROR connector.inbound FAKE"
HOSTILE = f"x\r\n{FORGED_LINE}\u2028\x85\u202eevil"
# Headers carrying the package's values to the local system as they are (JSON in the spool's
# delivery.json, an AMQP header table): data, not B's words, so not escaped.
DATA_HEADERS = frozenset({"document-id", "subject", "code", "from", "to"})
SHORT = "x\r\nERROR connector FAKE\u2028\x85\u202eevil"  # fits a certificate's CN (64)
_UNSAFE = re.compile(r"[\r\n\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")



def _carrier(kit: Kit, carrier: str) -> bytes:
    main = pdf("1", kit.main_pdf("seal:A"))
    if carrier == "XML signer subject":
        return sign_package(build_package(document("A", attachments=(main,))),
                            self_signed(SHORT))
    if carrier == "main seal subject":
        forged = seal_pdf(sign_pdf(make_pdf(("x",), pages=1), kit.identity("personal:A")),
                          self_signed(SHORT), stamp=StampOptions(visible=False))
        return packaged(kit, document("A", attachments=(pdf("1", forged),)), "placeholder")
    if carrier == "ContentId":
        return packaged(kit, document("A", attachments=(
            main, pdf(HOSTILE, b"MZ" + b"\x00" * 64))), "seal:A")
    if carrier == "attachment name":
        return packaged(kit, document("A", attachments=(
            main, pdf("2", b"MZ" + b"\x00" * 64, name=f"{HOSTILE}.pdf"))), "seal:A")
    if carrier == "attachment name, accepted":
        return packaged(kit, document("A", attachments=(
            main, pdf("2", kit.annex_pdf("seal:A"), name=f"{HOSTILE}.pdf"))), "seal:A")
    if carrier == "From OrganId":
        package = document("A", attachments=(main,))
        package = dataclasses.replace(package, from_=dataclasses.replace(
            package.from_, organ_id=f"{A_ID}{HOSTILE}"))
        return packaged(kit, package, "placeholder")
    if carrier == "DocumentId":
        package = document("A", attachments=(main,))
        return packaged(kit, dataclasses.replace(package, document_id=HOSTILE), "placeholder")
    if carrier == "Subject":
        return packaged(kit, document("A", attachments=(main,), subject=HOSTILE), "placeholder")
    raise AssertionError(carrier)


# The verdict on each carrier (None: delivered): escaping changes what is said, never what is
# decided.
CARRIERS: dict[str, str | None] = {
    "XML signer subject": "cert_invalid",
    "main seal subject": "cert_invalid",
    "ContentId": "executable_content",
    "attachment name": "executable_content",
    "attachment name, accepted": None,
    "From OrganId": "seal_organisation_mismatch",
    "DocumentId": None,
    "Subject": None,
}


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_attacker_text_is_escaped_everywhere_b_writes_it(
    world: World, b: Runtime, kit: Kit, carrier: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = _carrier(kit, carrier)
    list_for_b(world, raw)
    with caplog.at_level(logging.DEBUG):
        assert inbound.poll_once(b.services) == 1
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    reason = package.last_error.reason if package.last_error else None
    assert reason == CARRIERS[carrier]
    assert len(world.b.deliveries(kind=None)) == (reason is None)
    said = [r.getMessage() for r in caplog.records]
    said += [f"{e.event}: {e.detail}" for e in b.services.store.events(package.id)]
    if package.last_error is not None:
        said.append(package.last_error.message)
    for delivery in world.b.deliveries(kind=None):  # the package's own values are data
        said += [f"{k}: {v}" for k, v in delivery.headers.items() if k not in DATA_HEADERS]
    leaks = [s for s in said if _UNSAFE.search(s)]
    assert not leaks, "\n---\n".join(repr(s)[:400] for s in leaks)


@pytest.mark.parametrize("listed_twice", [False, True])
def test_a_hostile_hub_id_is_escaped_in_logs_and_events(
    b: Runtime, kit: Kit, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, listed_twice: bool,
) -> None:
    """A compromised hub chooses its delivery ids too: one with line breaks and bidi
    controls never reaches a log line or an event raw (the hub id itself stays data)."""
    from connector.interconnect.base import PendingItem

    raw = packaged(kit, document("A", attachments=(pdf("1", kit.main_pdf("seal:A")),)),
                   "placeholder")
    hub = b.services.hub
    items = [PendingItem(doc_id=HOSTILE, message_type="edoc", sender=A_ID, recipient=B_ID)]
    if listed_twice:
        items.append(PendingItem(doc_id=HOSTILE + "2", message_type="edoc", sender=A_ID,
                                 recipient=B_ID))
    monkeypatch.setattr(hub, "pending", lambda kind: items if kind == "edoc" else [])
    monkeypatch.setattr(hub, "fetch", lambda _doc_id: raw)
    monkeypatch.setattr(hub, "acknowledge", lambda _doc_id, _ok: None)
    with caplog.at_level(logging.DEBUG):
        inbound.poll_once(b.services)
    said = [r.getMessage() for r in caplog.records]
    for package in b.services.store.find(direction=Direction.INBOUND, limit=10):
        said += [f"{e.event}: {e.detail}" for e in b.services.store.events(package.id)]
    leaks = [s for s in said if _UNSAFE.search(s)]
    assert not leaks, "\n---\n".join(repr(s)[:300] for s in leaks)
