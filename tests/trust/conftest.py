"""Shared fixtures of the trust tests: one demo PKI per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.trust.pki import DemoPki, create_demo_pki
from connector.trust.truststore import TrustStore


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """A complete demo PKI (root, intermediate, two agencies, negative cases), made once."""
    return create_demo_pki(Path(tmp_path_factory.mktemp("demo-pki")) / "pki")


@pytest.fixture(scope="session")
def trust_store(demo_pki: DemoPki) -> TrustStore:
    """A trust store over the demo root and its CRLs (revocation: hard-fail, no fetching)."""
    return TrustStore.from_dirs(demo_pki.trust_dir, demo_pki.crl_dir)
