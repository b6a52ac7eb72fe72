"""Who may send what: the rules that bind a received package to its sender.

* a package without an XML signature must vouch for itself with a signed PDF (a document), or
  come from a peer whose unsigned statuses are accepted by configuration (a status);
* an XML signature by one agency's certificate cannot carry another agency's From;
* the real national-axis samples (placeholder signature, a zipped .doc) are refused by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.daemon import inbound
from connector.daemon.adapters import VerifierAdapter
from connector.daemon.wiring import Runtime
from connector.edxml import build_package
from connector.edxml.model import Organization
from connector.edxml.summary import peek
from connector.errors import PermanentError
from connector.trust.keys import load_identity
from connector.trust.origin import Refusal
from connector.trust.xmldsig import sign_package
from tests.e2e.harness import A_ID, B_ID, World
from tests.e2e.inprocess import daemon_pki, runtime, world  # noqa: F401
from tests.edxml.factories import edoc, status
from tests.samples import sample_params


@pytest.fixture
def b(world: World) -> Iterator[Runtime]:  # noqa: F811
    built = runtime(world, world.b)
    yield built
    built.close()


def _sealed_by(world: World, organ_id: str, data: bytes) -> bytes:  # noqa: F811
    agency = world.pki.agency(organ_id)
    return sign_package(data, load_identity(agency.seal.key, agency.seal.cert, (agency.chain,)))


def test_unsigned_status_is_refused_unless_the_peer_is_listed(b: Runtime) -> None:
    raw = build_package(status())  # a status from B's peer 000.00.32.H12, with no signature
    with pytest.raises(PermanentError) as caught:
        inbound.verify(b.services, raw)
    assert caught.value.reason == "signature_missing"
    verifier = b.services.verifier
    assert isinstance(verifier, VerifierAdapter)
    listed = dataclasses.replace(verifier, unsigned_status_from=frozenset({"000.00.32.H12"}))
    services = dataclasses.replace(b.services, verifier=listed)
    package, notes = inbound.verify(services, raw)
    assert package.kind == "status"
    assert any("unsigned status accepted from 000.00.32.H12" in note for note in notes)


def test_signer_must_be_the_sender(world: World, b: Runtime) -> None:  # noqa: F811
    # A signs a package that claims to come from another agency.
    forged = edoc(
        from_=Organization("000.00.33.H12", organ_name="Sở Tư pháp (demo)"),
        to=(Organization(B_ID),),
        attachments=(),
    )
    raw = _sealed_by(world, A_ID, build_package(forged))
    with pytest.raises(PermanentError) as caught:
        inbound.verify(b.services, raw)
    assert caught.value.reason == "signer_mismatch"
    assert A_ID in caught.value.message and "000.00.33.H12" in caught.value.message


def test_signed_by_the_sender_passes_the_binding(world: World, b: Runtime) -> None:  # noqa: F811
    genuine = edoc(to=(Organization(B_ID),), attachments=())
    raw = _sealed_by(world, A_ID, build_package(genuine))
    package, notes = inbound.verify(b.services, raw)
    assert package.from_.organ_id == A_ID
    assert any("XML signature valid" in note for note in notes)


@pytest.mark.parametrize("path", sample_params("edoc_*.edxml"))
def test_national_axis_samples_are_not_addressed_to_b(path: Path, b: Runtime) -> None:
    with pytest.raises(Refusal) as caught:
        inbound.verify(b.services, path.read_bytes())
    assert caught.value.reason == "not_addressed_to_us"
    assert not caught.value.sender_established


@pytest.mark.parametrize("path", sample_params("edoc_*.edxml"))
def test_national_axis_placeholder_without_sealed_pdf_is_refused(path: Path, b: Runtime) -> None:
    # Received by the agency it is addressed to: its main document is a (zipped) Word file,
    # not a PDF carrying the seal that could vouch for a placeholder-only package.
    raw = path.read_bytes()
    addressee = Organization(peek(raw).to_organ_ids[0])
    services = dataclasses.replace(b.services, agency=addressee)
    with pytest.raises(Refusal) as caught:
        inbound.verify(services, raw)
    assert caught.value.reason in ("main_document_not_pdf", "signature_missing")
    assert not caught.value.sender_established


def test_events_the_local_side_missed_are_published_later_in_order(b: Runtime) -> None:
    from connector.daemon import events
    from connector.errors import UnavailableError
    from connector.local.base import LocalEvent

    class Flaky:
        def __init__(self) -> None:
            self.down = True
            self.events: list[LocalEvent] = []

        def deliver(self, delivery: object) -> None:
            raise AssertionError("not used")

        def emit(self, event: LocalEvent) -> None:
            if self.down:
                raise UnavailableError("broker down", reason="broker_unavailable")
            self.events.append(event)

    sink = Flaky()
    services = dataclasses.replace(b.services, sink=sink)
    events.emit(services, "outbound.sent", None, note="first")
    events.emit(services, "outbound.sent", None, note="second")
    assert [e.body["note"] for e in services.event_backlog] == ["first", "second"]
    sink.down = False
    events.emit(services, "status.01", None, note="third")
    assert [e.body["note"] for e in sink.events] == ["first", "second", "third"]
    assert not services.event_backlog
