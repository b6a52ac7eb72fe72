"""Fixtures of the end-to-end tests: one demo PKI per session, one world per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.trust.pki import DemoPki, create_demo_pki
from tests.e2e.harness import World


@pytest.fixture(scope="session")
def e2e_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return create_demo_pki(Path(tmp_path_factory.mktemp("e2e-pki")) / "pki")


@pytest.fixture
def world(tmp_path: Path, e2e_pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    created = World(tmp_path, e2e_pki, monkeypatch.setenv)
    try:
        yield created
    finally:
        created.close()
