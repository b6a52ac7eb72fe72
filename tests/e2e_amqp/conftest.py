"""Fixtures of the RabbitMQ end-to-end tests: one demo PKI per session, a world per test.

Every test here needs the real broker (``CONNECTOR_TEST_AMQP_URL``, by default RabbitMQ on
127.0.0.1:5672 with guest/guest) and skips, saying why, when none answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.trust.pki import DemoPki, create_demo_pki
from tests.e2e_amqp.harness import AmqpWorld, broker_problem


@pytest.fixture(scope="session")
def amqp_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    problem = broker_problem()
    if problem is not None:
        pytest.skip(problem)
    return create_demo_pki(Path(tmp_path_factory.mktemp("e2e-amqp-pki")) / "pki")


@pytest.fixture
def amqp_world(
    tmp_path: Path, amqp_pki: DemoPki, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AmqpWorld]:
    created = AmqpWorld(tmp_path, amqp_pki, monkeypatch.setenv)
    try:
        yield created
    finally:
        created.close()
