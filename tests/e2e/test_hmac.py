"""A connector whose HMAC secret is wrong: the hub answers 401, the connector reports a
configuration problem (log, store), the package waits READY without spending attempts, and
once the operator fixes the secret it leaves as it was signed. (Stale timestamps and altered
signed headers are driven through the real client in tests/daemon/test_sender.py.)
"""

from __future__ import annotations

import secrets

import pytest

from connector.store.states import Direction, OutboundState
from tests.e2e import checks
from tests.e2e.harness import A_ID, World

pytestmark = pytest.mark.slow


def test_wrong_secret_is_a_configuration_problem_not_a_message_failure(world: World) -> None:
    world.derive(world.a)
    hub = world.start_hub()
    record = world.json_record("01-ordinary.json")
    world.a.drop_record(record)
    wrong = secrets.token_hex(24)
    secret_file = world.a.home / "hub.secret"  # where the shipped configuration reads it
    right = secret_file.read_text()
    secret_file.write_text(wrong + "\n")
    world.a.start()
    world.b.start()

    def deferred_twice() -> bool:
        with world.a.store() as store:
            found = store.find(direction=Direction.OUTBOUND, limit=10)
            return (
                bool(found) and sum(e.event == "deferred" for e in store.events(found[0].id)) >= 2
            )

    world.wait("A's package deferred by the hub's refusals", deferred_twice)
    refusals = hub.requests("sendEdoc")
    assert refusals and {(r.http_status, r.systemid) for r in refusals} == {(401, "")}
    assert not world.hub_packages(sender=A_ID)
    with world.a.store() as store:
        (package,) = store.find(direction=Direction.OUTBOUND, limit=10)
        assert package.state is OutboundState.READY
        assert package.attempts == 0  # waiting for the operator spends no attempt
        assert package.last_error is not None and package.last_error.reason == "hub_auth"
    assert not world.a.events("outbound.failed")
    assert not world.a.events("outbound.retry")
    log = world.a.log_text()
    assert "hub refused our configuration (not a message failure)" in log
    assert "401" in log
    assert wrong not in log and world.env["HUB_SECRET_AGENCY_A"] not in log

    # The operator fixes the secret and restarts: the same package goes out.
    assert world.a.stop() == 0
    secret_file.write_text(right)
    world.a.start()
    checks.wait_documents_at_b(world, [record])
    checks.wait_arrived(world, 1)
    with world.a.store() as store:
        (package,) = [
            p
            for p in store.find(direction=Direction.OUTBOUND, limit=10)
            if p.key == record.record_id
        ]
        assert package.state is OutboundState.SENT and package.attempts == 1
    checks.assert_hub_holds_what_was_stored(world, world.a)
    assert world.close() == {"A": 0, "B": 0}
