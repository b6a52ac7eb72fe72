"""A package the hub always answers with a server error cannot wait forever, nor block others."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from connector.daemon import sender
from connector.daemon.ports import Services
from connector.daemon.retry import DependencyBackoff
from connector.errors import UnavailableError
from connector.store.sqlite import SqliteStore
from connector.store.states import OutboundState
from tests.daemon.test_sender import POLICY, Clock, _ready, _sink, clock, hub, services, store  # noqa: F401
from tests.hub.harness import A


class ChokingHub:
    """Answers HTTP 500 for one package, takes every other one."""

    def __init__(self, poison: bytes) -> None:
        self.poison = poison
        self.sent: list[bytes] = []

    def send(
        self, package: bytes, *, message_type: str, sender: str, to: Sequence[str] = ()
    ) -> str:
        if package == self.poison:
            raise UnavailableError("hub: HTTP 500: internal error", reason="hub_server_error")
        self.sent.append(package)
        return f"hub-{len(self.sent)}"


def test_server_errors_on_one_package_end_failed_while_others_go(
    services: Services,  # noqa: F811
    store: SqliteStore,  # noqa: F811
    clock: Clock,  # noqa: F811
) -> None:
    poison_id, poison = _ready(store, clock, "1/POISON", priority=3)  # claimed first every time
    good_id, good = _ready(store, clock, "2/GOOD")
    choking_hub = ChokingHub(poison)
    choking = dataclasses.replace(services, hub=choking_hub)  # type: ignore[arg-type]
    backoff = DependencyBackoff(POLICY)
    for _ in range(20):
        sender.send_round(choking, backoff)
        clock.now += POLICY.max_delay + 1
        if store.get(poison_id).state is OutboundState.FAILED and good in choking_hub.sent:
            break
    failed = store.get(poison_id)
    assert failed.state is OutboundState.FAILED, failed
    assert failed.attempts == POLICY.max_attempts
    assert failed.last_error is not None and failed.last_error.reason == "hub_server_error"
    assert store.get(good_id).state is OutboundState.SENT and choking_hub.sent == [good]
    assert "outbound.failed" in _sink(choking).routing_keys()
    assert A  # the harness' sender OrganId
