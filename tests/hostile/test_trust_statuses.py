"""Statuses 01–16 under the same sender binding as documents: no way around it.

Every status code × every way of signing it × who it claims to come from. A status is taken
only when an organisation certificate bound to its From signed it, or when its sender is
listed in ``unsigned_status_from``; the QCVN placeholder is no path around that list. A
status whose signer no rule binds is handed over marked but never changes tracking.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from connector.daemon import inbound, statuses
from connector.daemon.adapters import VerifierAdapter
from connector.daemon.ports import Services
from connector.daemon.wiring import Runtime
from connector.edxml.model import ResponseFor, StatusCode, StatusPackage
from connector.errors import PermanentError
from connector.store.states import Direction, InboundState
from connector.trust.origin import Refusal
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime, status_notices, world  # noqa: F401
from tests.edxml.factories import status
from tests.hostile.trust_kit import B_ID, Kit, list_for_b, org, organ_id, packaged

SIGNERS = ("none", "placeholder", "seal:A", "seal:C", "personal:A", "personal:C", "unbound:A")


def _status(code: StatusCode, from_: str) -> StatusPackage:
    """A status from ``from_`` about a document B sent."""
    base = status(code)
    rf = base.response_for
    return dataclasses.replace(base, from_=org(from_), response_for=ResponseFor(
        B_ID, rf.code, rf.document_id, rf.promulgation_date))


def _listing(services: Services, listed: frozenset[str]) -> Services:
    verifier = services.verifier
    assert isinstance(verifier, VerifierAdapter)
    origin = dataclasses.replace(verifier.origin, unsigned_status_from=listed)
    changed = dataclasses.replace(verifier, unsigned_status_from=listed, origin=origin)
    return dataclasses.replace(services, verifier=changed)


def expected(from_: str, signer: str, listed: bool) -> str:
    kind, _, agency = signer.partition(":")
    if kind == "seal" and agency != from_:
        return "signer_mismatch"
    if kind == "seal" or listed:
        return "verified"
    if kind == "unbound":
        return "unverified"
    if kind == "personal":
        return "sender_not_bound"
    return "signature_missing"


def _verdict(services: Services, raw: bytes) -> str:
    try:
        received = inbound.authenticate(services, raw)
    except Refusal as exc:
        assert not exc.sender_established or exc.reason == "signer_mismatch"
        return exc.reason
    except PermanentError as exc:  # refused before any binding (no signature at all)
        return exc.reason
    return "verified" if received.origin.established else "unverified"


@pytest.mark.parametrize("listed", [False, True], ids=["not listed", "unsigned_status_from"])
def test_every_status_code_signer_and_sender(b: Runtime, kit: Kit, listed: bool) -> None:
    services = _listing(b.services, frozenset({organ_id("A")}) if listed else frozenset())
    wrong = []
    for code, signer, from_ in itertools.product(StatusCode, SIGNERS, ("A", "C")):
        raw = packaged(kit, _status(code, from_), signer)
        got = _verdict(services, raw)
        want = expected(from_, signer, listed and from_ == "A")
        if got != want:
            wrong.append(f"{code.value} from {from_} signed {signer}: got {got}, want {want}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("signer", "applied", "state"),
    [
        ("seal:A", True, InboundState.ACKNOWLEDGED),
        ("unbound:A", False, InboundState.ACKNOWLEDGED),
        ("placeholder", False, InboundState.REJECTION_NOTIFIED),
        ("personal:C", False, InboundState.REJECTION_NOTIFIED),
        ("seal:C", False, InboundState.REJECTION_NOTIFIED),
    ],
)
def test_only_a_bound_status_changes_tracking(
    world: World, b: Runtime, kit: Kit, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    signer: str, applied: bool, state: InboundState,
) -> None:
    calls: list[StatusPackage] = []
    monkeypatch.setattr(statuses, "apply_incoming", lambda _s, package: calls.append(package))
    raw = packaged(kit, _status(StatusCode.ASSIGNED, "A"), signer)
    list_for_b(world, raw)
    assert inbound.poll_once(b.services) == 1
    (package,) = b.services.store.find(direction=Direction.INBOUND, limit=10)
    assert package.inbound_state is state
    assert bool(calls) is applied
    assert status_notices(b) == []  # a status is never answered
    if signer == "unbound:A":
        (delivery,) = world.b.deliveries(kind="status")
        assert delivery.headers["sender-verified"] == "no"
