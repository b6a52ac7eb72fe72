"""Crash safety: ``kill -9`` of a connector at the points where a crash matters, then restart.

Each case runs A and B with a fault point armed (``CONNECTOR_FAULT=<point>:kill:<n>``: the
process SIGKILLs itself the n-th time it reaches the point), waits for the crash, restarts
the same agency on the same state without the fault, and checks: nothing lost (every document
at B, every 01 at A), nothing delivered twice to a local side, and the hub never got two
contents for one package. A's points cover the way out (prepare, store, send) and the way in
of the statuses; B's the way in of the documents (store, deliver, acknowledge) and the sending
of its 01.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable

import pytest

from connector.store.states import Direction, InboundState, OutboundState, RecipientState
from tests.e2e import checks
from tests.e2e.harness import A_ID, B_ID, Agency, Record, World, status_command

pytestmark = pytest.mark.slow

# (fault armed on A, fault armed on B). The n-th occurrence: a crash after some work is done.
CASES = [
    pytest.param("before_store_ready:kill:2", "after_store_received:kill:1", id="prepare+received"),
    pytest.param("after_store_ready:kill:2", "after_deliver:kill:2", id="ready+delivered"),
    pytest.param("before_send:kill:2", "after_ack:kill:1", id="send+acknowledged"),
    pytest.param("after_send:kill:1", "before_send:kill:2", id="sent+status-send"),
    pytest.param("after_deliver:kill:2", "after_send:kill:1", id="status-in+status-sent"),
    pytest.param("after_ack:kill:1", "after_store_ready:kill:1", id="status-ack+command"),
]


def _run_through_crashes(
    world: World, armed: dict[str, str], done: Callable[[], bool], timeout: float = 150
) -> set[str]:
    """Restart every agency its armed fault killed until ``done``; return who crashed."""
    crashed: set[str] = set()
    deadline = time.monotonic() + timeout
    while not done():
        for agency in world.agencies:
            process = agency.process
            assert process is not None
            code = process.poll()
            if code is None:
                continue
            assert agency.name in armed and agency.name not in crashed, (
                f"connector {agency.name} exited with {code} unexpectedly\n{agency.log_tail()}"
            )
            assert code == -signal.SIGKILL, f"{agency.name} exited {code}\n{agency.log_tail()}"
            crashed.add(agency.name)
            agency.start()  # the same configuration and state, without the fault
        if time.monotonic() > deadline:
            tails = "\n".join(a.log_tail() for a in world.agencies)
            raise AssertionError(f"not finished after {timeout}s; crashed: {crashed}\n{tails}")
        time.sleep(0.2)
    return crashed


def _records(world: World) -> list[Record]:
    return [
        world.json_record("01-ordinary.json"),
        world.json_record("02-urgent.json"),
        world.json_record("03-attachments.json"),
    ]


def _status_command_for_first(world: World, records: list[Record]) -> None:
    first = checks.document_id(records[0])
    world.b.drop_command("LENH-CRASH-03", status_command("LENH-CRASH-03", "03", first))


@pytest.mark.parametrize(("fault_a", "fault_b"), CASES)
def test_kill_and_restart_loses_nothing_and_repeats_nothing(
    world: World, fault_a: str, fault_b: str
) -> None:
    world.derive(world.a)
    world.derive(world.b)
    world.start_hub()
    records = _records(world)
    for record in records:
        world.a.drop_record(record)
    world.a.start(fault=fault_a)
    world.b.start(fault=fault_b)
    armed = {"A": fault_a, "B": fault_b}
    # B's clerk accepts the first document once it is there: A's after_ack and B's
    # after_store_ready points are reached on the way of that 03 too.
    commanded = False
    first = checks.document_id(records[0])
    expected_notices = {(checks.document_id(r), "01") for r in records} | {(first, "03")}

    def everything_arrived() -> bool:
        nonlocal commanded
        if checks.delivered_documents(world) != checks.expected_documents(records):
            return False
        if not commanded:
            _status_command_for_first(world, records)
            commanded = True
        # Every status at A's local side (a 03 may overtake a 01 held back by a crash).
        return expected_notices <= set(_notices_at_a(world))

    crashed = _run_through_crashes(world, armed, everything_arrived)
    assert crashed == {"A", "B"}, f"a fault point was never reached (crashed: {crashed})"

    # Let any late duplicate show itself before counting.
    world.wait("B's inbox at the hub empty", lambda: not world.hub.inbox(B_ID))
    world.wait("A's inbox at the hub empty", lambda: not world.hub.inbox(A_ID))
    checks.assert_exactly_once(world, records)
    checks.assert_same_content(world, records)
    checks.assert_hub_holds_what_was_stored(world, world.a)
    checks.assert_hub_holds_what_was_stored(world, world.b)
    _assert_settled(world.a, world.b)
    # A's local side: each status notice once; A's tracking has B's answer for every document.
    notices = _notices_at_a(world)
    assert notices == dict.fromkeys(expected_notices, 1), notices
    states = checks.arrived_at_b(world.a)
    assert len(states) == len(records) and set(states.values()) <= {
        RecipientState.ARRIVED,
        RecipientState.ACCEPTED,
    }, states
    assert world.close() == {"A": 0, "B": 0}


def _notices_at_a(world: World) -> collections.Counter[tuple[str, str]]:
    return collections.Counter(
        (d.document_id, d.headers["status-code"]) for d in world.a.deliveries("status")
    )


def _assert_settled(a: Agency, b: Agency) -> None:
    with a.store() as store:
        out = store.find(direction=Direction.OUTBOUND, limit=100)
        assert {p.state for p in out} == {OutboundState.SENT}, [(p.key, p.state) for p in out]
        inbound = store.find(direction=Direction.INBOUND, limit=100)
        assert {p.state for p in inbound} == {InboundState.ACKNOWLEDGED}
    with b.store() as store:
        out = store.find(direction=Direction.OUTBOUND, limit=100)
        assert {p.state for p in out} == {OutboundState.SENT}, [(p.key, p.state) for p in out]
        inbound = store.find(direction=Direction.INBOUND, limit=100)
        assert {p.state for p in inbound} == {InboundState.NOTIFIED}
