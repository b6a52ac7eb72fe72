"""Assertions shared by the end-to-end tests: what must hold after any run, faults or not.

* every document arrived at B exactly once (by DocumentId and business type) and nothing else;
* B's files are the PDFs A sealed, byte for byte, and verify at B (personal signature + seal);
* the hub holds, for each package a connector sent, exactly the bytes its store kept;
* A's tracking knows B's 01 for every document.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Sequence
from typing import Any

from connector.edxml import parse_package
from connector.edxml.model import EdocPackage
from connector.store.states import Direction, OutboundState, PackageKind, RecipientState
from connector.trust import payload
from connector.trust.keys import load_certificate, load_private_key
from connector.trust.pdf_policy import is_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.truststore import SignerKind, TrustStore
from tests.e2e.harness import A_ID, B_ID, Agency, Delivery, Record, World, today


def document_id(record: Record) -> str:
    return f"{A_ID},{today():%Y/%m/%d},{record.code}"


def expected_documents(records: Sequence[Record]) -> collections.Counter[str]:
    return collections.Counter(document_id(r) for r in records if not r.secret)


def delivered_documents(world: World) -> collections.Counter[str]:
    return collections.Counter(d.document_id for d in world.b.deliveries("document"))


def wait_documents_at_b(world: World, records: Sequence[Record], timeout: float = 120) -> None:
    expected = expected_documents(records)
    world.wait(
        f"{sum(expected.values())} documents at B",
        lambda: delivered_documents(world) == expected,
        timeout=timeout,
    )


def arrived_at_b(agency: Agency) -> dict[int, RecipientState]:
    """B's state in A's tracking, per outbound document package of A."""
    states: dict[int, RecipientState] = {}
    with agency.store() as store:
        for package in store.find(direction=Direction.OUTBOUND, limit=1000):
            if package.kind is not PackageKind.EDOC:
                continue
            for recipient in store.recipients(package.id):
                if recipient.organ_id == B_ID:
                    states[package.id] = recipient.state
    return states


def wait_arrived(world: World, count: int, timeout: float = 120) -> dict[int, RecipientState]:
    """Wait until A tracks B's 01 (or a later status) for ``count`` document packages."""
    later = {RecipientState.SENT, RecipientState.PENDING}

    def done() -> dict[int, RecipientState] | None:
        states = arrived_at_b(world.a)
        reached = [s for s in states.values() if s not in later]
        return states if len(reached) >= count else None

    return world.wait(f"01 from B at A for {count} documents", done, timeout=timeout)


def assert_exactly_once(world: World, records: Sequence[Record]) -> list[Delivery]:
    """Each document exactly once at B; a document package with its business type once."""
    deliveries = world.b.deliveries("document")
    assert delivered_documents(world) == expected_documents(records)
    kinds = collections.Counter(
        (d.document_id, d.headers.get("business-doc-type")) for d in deliveries
    )
    repeated = {k: n for k, n in kinds.items() if n > 1}
    assert not repeated, f"delivered more than once at B: {repeated}"
    return deliveries


def _b_decryption(world: World) -> tuple[Any, Any]:
    pair = world.pki.agency(B_ID).encryption
    return load_private_key(pair.key), load_certificate(pair.cert)


def sent_documents(agency: Agency) -> dict[tuple[str, str], EdocPackage]:
    """A's sent document packages by (DocumentId, business type), parsed from stored bytes."""
    found: dict[tuple[str, str], EdocPackage] = {}
    with agency.store() as store:
        for package in store.find(direction=Direction.OUTBOUND, limit=1000):
            if package.kind is PackageKind.EDOC and package.state is OutboundState.SENT:
                raw = store.raw(package.id)
                assert raw is not None
                model = parse_package(raw)
                assert isinstance(model, EdocPackage)
                key = (model.document_id, str(int(model.business_doc_type)))
                assert key not in found, f"A sent two packages for {key}"
                found[key] = model
    return found


def assert_same_content(world: World, records: Sequence[Record]) -> None:
    """B's record and files are what A sent: PDFs byte for byte as A sealed them, and each
    verifies at B (main: a personal signature and A's seal; attachments: A's seal)."""
    key, cert = _b_decryption(world)
    trust = TrustStore.from_dirs(world.pki.trust_dir, world.pki.crl_dir)
    sent = sent_documents(world.a)
    subjects = {document_id(r): r.subject for r in records}
    for delivery in world.b.deliveries("document"):
        package = sent[(delivery.document_id, delivery.headers["business-doc-type"])]
        clear = payload.decrypt_attachments(package.attachments, key, cert)
        as_sent = {a.name: hashlib.sha256(a.data).hexdigest() for a in clear}
        received = delivery.files()
        assert {n: hashlib.sha256(d).hexdigest() for n, d in received.items()} == as_sent, (
            f"{delivery.document_id}: B's files differ from what A sealed and sent"
        )
        assert delivery.record().get("trich_yeu") == subjects[delivery.document_id]
        for index, (name, data) in enumerate(received.items()):
            if not is_pdf(data):
                continue
            report = verify_pdf(data, trust)
            assert report.all_ok, f"{name}: {[(s.signer, s.reason) for s in report.failures]}"
            seals = report.valid_of(SignerKind.ORGANISATION)
            assert any(s.organ_id == A_ID for s in seals), (
                f"{name}: no valid seal of A ({[s.signer for s in report.signatures]})"
            )
            if index == 0:
                assert report.valid_of(SignerKind.PERSONAL), f"{name}: no personal signature"


def assert_hub_holds_what_was_stored(world: World, agency: Agency) -> None:
    """Every package the hub took from ``agency`` is byte for byte one its store kept, each
    stored package once; and no document (DocumentId + business type) has two contents."""
    with agency.store() as store:
        stored = {}
        for package in store.find(direction=Direction.OUTBOUND, limit=1000):
            raw = store.raw(package.id)
            if raw is not None:
                stored[hashlib.sha256(raw).hexdigest()] = package
    at_hub = world.hub_packages(sender=agency.organ_id)
    for item in at_hub:
        assert item.sha256 in stored, (
            f"the hub holds a {item.message_type} package for {item.document_id} that "
            f"{agency.name}'s store never kept (content changed under the same id?)"
        )
    sent = {sha for sha, p in stored.items() if p.state is OutboundState.SENT}
    assert sent == {item.sha256 for item in at_hub}
    edocs: dict[tuple[str, str], str] = {}
    for item in at_hub:
        if item.message_type != "edoc":
            continue
        model = parse_package(item.data)
        assert isinstance(model, EdocPackage)
        key = (model.document_id, str(int(model.business_doc_type)))
        assert edocs.setdefault(key, item.sha256) == item.sha256, f"two contents for {key}"
