"""Wiring with the seal in a PKCS#11 token (SoftHSM2): the shipped configuration with its
``trust.seal`` replaced by a token key seals in the daemon's own worker processes and signs
packages in the main one; a token pulled out makes both wait (``UnavailableError``, ``keys`` and
``token_seal`` down in /readyz) and both work again once it is back."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.config import load_config
from connector.config_schema import Config, KeyConfig
from connector.daemon import wiring
from connector.edxml.builder import build_package
from connector.edxml.model import Attachment
from connector.errors import UnavailableError
from connector.trust import pkcs11_token, xmldsig
from connector.trust.keys import load_identity
from connector.trust.pdf_sample import make_pdf
from connector.trust.pdf_seal import sign_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pkcs11_keys import TokenKeySource, forget_identities
from connector.trust.pkcs11_softhsm import SoftHsm, enrol_demo_seal, softhsm_module
from connector.trust.truststore import TrustStore
from tests.e2e.harness import A_ID, CONFIG_A, World
from tests.e2e.inprocess import daemon_pki, world  # noqa: F401
from tests.edxml.factories import edoc

if softhsm_module() is None:
    pytest.skip("SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)",
                allow_module_level=True)

PIN = "2468-1357"


@pytest.fixture
def hsm(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:  # noqa: F811
    created = SoftHsm.create(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(created.conf))  # worker processes inherit it
    monkeypatch.setenv("CONNECTOR_SEAL_PIN", PIN)
    monkeypatch.setattr(pkcs11_token, "RESCAN_INTERVAL", 0.0)
    pkcs11_token.close_all()
    forget_identities()
    enrol_demo_seal(created, world.pki, A_ID, token_label="seal-a", pin=PIN)
    yield created
    pkcs11_token.close_all()
    forget_identities()


def _token_config(world: World, hsm: SoftHsm) -> Config:  # noqa: F811
    config = load_config(CONFIG_A, environ={**world.env, "SOFTHSM2_CONF": str(hsm.conf)})
    seal = KeyConfig.model_validate({
        "pkcs11": {"module": str(hsm.module), "token_label": "seal-a", "key_label": "seal",
                   "pin_env": "CONNECTOR_SEAL_PIN"},
        "chain": [str(world.pki.intermediate_cert)],
    })
    trust = config.trust.model_copy(update={"seal": seal, "xml_signer": None})
    return config.model_copy(update={"trust": trust})


def test_the_daemon_seals_and_signs_with_the_token_and_waits_for_it(
        world: World, hsm: SoftHsm, tmp_path: Path) -> None:  # noqa: F811
    config = _token_config(world, hsm)
    runtime = wiring.build(config, start_metrics=False)
    try:
        services = runtime.services
        assert isinstance(services.pdf.seal, TokenKeySource)  # type: ignore[attr-defined]
        health = wiring._health(config, runtime.metrics)
        personal = world.pki.agency(A_ID).signer
        signed_pdf = sign_pdf(make_pdf(("Cong van",)), load_identity(
            personal.key, personal.cert, [world.pki.intermediate_cert]))
        document = (Attachment("1", "cong-van.pdf", "application/pdf", signed_pdf),)
        trust = TrustStore.from_dirs(world.pki.trust_dir, world.pki.crl_dir)

        def seal_in_pool() -> bytes:
            future = services.pool.submit(services.pdf.seal_outbound, document)
            return future.result(timeout=120)[0].data  # type: ignore[no-any-return]

        def sign_here() -> bytes:
            return services.signer.sign(build_package(edoc()))

        report = verify_pdf(seal_in_pool(), trust)
        assert [s.organ_id for s in report.signatures if s.ok][-1] == A_ID
        assert xmldsig.verify_package(sign_here(), trust, legacy_policy="refuse").signed
        assert health.ready().components["token_seal"].up is True

        folders = hsm.token_folders()
        for folder in folders:
            shutil.move(folder, tmp_path / folder.name)
        try:
            with pytest.raises(UnavailableError):
                seal_in_pool()
            with pytest.raises(UnavailableError):
                sign_here()
            assert runtime.metrics.components()["keys"] is False
            state = health.ready().components["token_seal"]
            assert state.up is False and "seal-a" in state.detail
        finally:
            for folder in folders:
                shutil.move(tmp_path / folder.name, folder)

        # The worker process looks for the token again at most every RESCAN_INTERVAL (its
        # own, unpatched 2 s), as the daemon's retries would.
        deadline = time.monotonic() + 30
        while True:
            try:
                sealed = seal_in_pool()
                break
            except UnavailableError:
                assert time.monotonic() < deadline, "the token came back but sealing still waits"
                time.sleep(0.5)
        assert verify_pdf(sealed, trust).signatures[-1].ok
        assert xmldsig.verify_package(sign_here(), trust, legacy_policy="refuse").signed
        assert runtime.metrics.components()["keys"] is True
        assert health.ready().components["token_seal"].up is True
    finally:
        runtime.close()
