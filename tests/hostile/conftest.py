"""Fixtures of the trust families: three agencies' PKI, the package kit, agency B's runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.daemon.wiring import Runtime
from connector.trust.pki import DemoPki
from tests.e2e.harness import World
from tests.e2e.inprocess import runtime
from tests.hostile.trust_kit import Kit, three_agency_pki


@pytest.fixture(scope="module")
def daemon_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """Agencies A, B and C (C is the third party whose keys an attacker may hold)."""
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def kit(daemon_pki: DemoPki) -> Kit:
    return Kit(daemon_pki)


@pytest.fixture
def b(world: World) -> Iterator[Runtime]:
    """Agency B's services, in process, fed by a compromised hub."""
    built = runtime(world, world.b)
    yield built
    built.close()
