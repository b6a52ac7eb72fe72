"""The state tables: legal and illegal moves, terminal states, recipient progress."""

from __future__ import annotations

import pytest

from connector.store.states import (
    RECIPIENT_TRANSITIONS,
    TRANSITIONS,
    Direction,
    IllegalTransition,
    InboundState,
    OutboundState,
    PackageKind,
    RecipientState,
    check_transition,
    is_terminal,
    parse_state,
    recipient_move_allowed,
    recipient_state_for,
    resumable_states,
)

OUT, IN = Direction.OUTBOUND, Direction.INBOUND
EDOC, STATUS = PackageKind.EDOC, PackageKind.STATUS


def test_every_state_has_a_row_in_the_table() -> None:
    for outbound in OutboundState:
        assert (OUT, outbound) in TRANSITIONS
    for inbound in InboundState:
        assert (IN, inbound) in TRANSITIONS
    assert set(RECIPIENT_TRANSITIONS) == set(RecipientState)


@pytest.mark.parametrize(
    ("direction", "current", "target"),
    [
        (OUT, None, OutboundState.ACCEPTED),
        (OUT, None, OutboundState.READY),
        (OUT, OutboundState.ACCEPTED, OutboundState.READY),
        (OUT, OutboundState.READY, OutboundState.SENT),
        (OUT, OutboundState.READY, OutboundState.FAILED),
        (OUT, OutboundState.FAILED, OutboundState.READY),
        (OUT, OutboundState.REFUSED, OutboundState.ACCEPTED),
        (IN, None, InboundState.RECEIVED),
        (IN, InboundState.RECEIVED, InboundState.VERIFIED),
        (IN, InboundState.VERIFIED, InboundState.DELIVERED),
        (IN, InboundState.DELIVERED, InboundState.ACKNOWLEDGED),
        (IN, InboundState.ACKNOWLEDGED, InboundState.NOTIFIED),
        (IN, InboundState.RECEIVED, InboundState.REJECTED),
        (IN, InboundState.REJECTED, InboundState.REJECTION_NOTIFIED),
    ],
)
def test_legal_moves(direction: Direction, current: object, target: object) -> None:
    check_transition(direction, EDOC, current, target)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("direction", "current", "target"),
    [
        (OUT, None, OutboundState.SENT),
        (OUT, OutboundState.ACCEPTED, OutboundState.SENT),
        (OUT, OutboundState.SENT, OutboundState.READY),
        (OUT, OutboundState.SENT, OutboundState.FAILED),
        (OUT, OutboundState.REFUSED, OutboundState.SENT),
        (IN, None, InboundState.VERIFIED),
        (IN, InboundState.RECEIVED, InboundState.DELIVERED),
        (IN, InboundState.DELIVERED, InboundState.REJECTED),
        (IN, InboundState.NOTIFIED, InboundState.RECEIVED),
    ],
)
def test_illegal_moves_are_refused_loudly(
    direction: Direction, current: object, target: object
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(direction, EDOC, current, target, package="#7")  # type: ignore[arg-type]
    assert "#7" in caught.value.message
    assert "not allowed" in caught.value.message
    assert caught.value.reason == "illegal_transition"


def test_no_notice_for_a_status_package() -> None:
    check_transition(IN, EDOC, InboundState.ACKNOWLEDGED, InboundState.NOTIFIED)
    with pytest.raises(IllegalTransition):
        check_transition(IN, STATUS, InboundState.ACKNOWLEDGED, InboundState.NOTIFIED)
    assert is_terminal(IN, STATUS, InboundState.ACKNOWLEDGED)
    assert not is_terminal(IN, EDOC, InboundState.ACKNOWLEDGED)


def test_resumable_states() -> None:
    assert resumable_states(OUT, EDOC) == {OutboundState.ACCEPTED, OutboundState.READY}
    assert InboundState.RECEIVED in resumable_states(IN, EDOC)
    assert InboundState.REJECTED in resumable_states(IN, EDOC)
    assert InboundState.NOTIFIED not in resumable_states(IN, EDOC)


def test_parse_state_is_case_insensitive_and_names_the_choices() -> None:
    assert parse_state(OUT, "failed") is OutboundState.FAILED
    assert parse_state(IN, "Received") is InboundState.RECEIVED
    with pytest.raises(ValueError, match="ACCEPTED, READY"):
        parse_state(OUT, "RECEIVED")


def test_recipient_progress_and_out_of_order_codes() -> None:
    r = RecipientState
    assert recipient_state_for("01") is r.ARRIVED
    assert recipient_state_for("16") is r.RECALL_REFUSED
    with pytest.raises(ValueError, match="07"):
        recipient_state_for("07")
    assert recipient_move_allowed(r.PENDING, r.ARRIVED)  # the peer can overtake our SENT mark
    assert recipient_move_allowed(r.SENT, r.FINISHED)  # steps may be skipped
    assert not recipient_move_allowed(r.ACCEPTED, r.ARRIVED)  # a late 01 does not go back
    assert not recipient_move_allowed(r.REJECTED, r.ACCEPTED)
    assert recipient_move_allowed(r.RECALL_REQUESTED, r.RECALLED)
    assert not recipient_move_allowed(r.RECALLED, r.PROCESSING)
    assert recipient_move_allowed(r.RECALL_REFUSED, r.PROCESSING)
