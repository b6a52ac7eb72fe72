"""Keys in a PKCS#11 token (SoftHSM2): PDF seals and package XML signatures made by the token.

The tokens live in a temporary SOFTHSM2_CONF; their keys are generated inside the token and
certified by the demo PKI. Every seal is checked by pyHanko (our verifier) and pdfsig, every
package by xmlsec1 and our verifier; a token that goes away makes signing wait
(UnavailableError) and it works again once the token is back.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connector.edxml.builder import build_package
from connector.errors import ConfigurationError, UnavailableError
from connector.trust import pkcs11_token, xmldsig
from connector.trust.keys import SigningIdentity
from connector.trust.pdf_seal import StampOptions, seal_pdf
from connector.trust.pdf_verify import verify_pdf
from connector.trust.pkcs11_keys import (
    TokenECPrivateKey,
    TokenKeySource,
    TokenRSAPrivateKey,
    forget_identities,
)
from connector.trust.pkcs11_softhsm import SoftHsm, softhsm_module
from connector.trust.pkcs11_token import TokenSpec
from connector.trust.pki import DEMO_AGENCIES, DemoPki, issue_seal_certificate
from connector.trust.truststore import TrustStore
from tests.edxml.factories import edoc

if softhsm_module() is None:
    pytest.skip("SoftHSM2 is not installed (Debian package softhsm2; .ci/run installs it)",
                allow_module_level=True)

PIN_ENV = "CONNECTOR_TEST_TOKEN_PIN"
PIN = "4711-0815"
XMLSEC1 = shutil.which("xmlsec1")
PDFSIG = shutil.which("pdfsig")


@dataclass(frozen=True)
class Tokens:
    hsm: SoftHsm
    rsa: TokenKeySource  # agency A's seal, RSA-2048, certificate stored in the token
    ec: TokenKeySource  # agency B's seal, EC P-256, certificate in a file, PIN in a file
    spare_label: str  # a token with no key in it


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory, demo_pki: DemoPki) -> Iterator[Tokens]:
    root = Path(tmp_path_factory.mktemp("softhsm"))
    hsm = SoftHsm.create(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(hsm.conf))
        patch.setenv(PIN_ENV, PIN)
        patch.setattr(pkcs11_token, "RESCAN_INTERVAL", 0.0)
        pkcs11_token.close_all()  # the module reads SOFTHSM2_CONF when it is initialised
        forget_identities()
        hsm.init_token("org-a", PIN)
        hsm.init_token("org-b", PIN)
        hsm.init_token("spare", PIN)
        first, second = DEMO_AGENCIES[0], DEMO_AGENCIES[1]
        public = hsm.generate_key("org-a", PIN, "seal", key_id=b"\x01", kind="rsa")
        hsm.store_certificate("org-a", PIN, "seal", key_id=b"\x01",
                              certificate=issue_seal_certificate(demo_pki, first, public))
        public = hsm.generate_key("org-b", PIN, "seal", key_id=b"\x02", kind="ec")
        cert_file = root / "org-b-seal.pem"
        cert_file.write_bytes(issue_seal_certificate(demo_pki, second, public).public_bytes(
            serialization.Encoding.PEM))
        pin_file = root / "pin"
        pin_file.write_text(PIN + "\n", encoding="utf-8")
        rsa_source = TokenKeySource(TokenSpec(hsm.module, "org-a", pin_env=PIN_ENV),
                                    key_label="seal", chain=(demo_pki.intermediate_cert,))
        ec_source = TokenKeySource(TokenSpec(hsm.module, "org-b", pin_file=pin_file),
                                   key_label="seal", cert_file=cert_file,
                                   chain=(demo_pki.intermediate_cert,))
        yield Tokens(hsm, rsa_source, ec_source, "spare")
        pkcs11_token.close_all()
        forget_identities()


def test_identity_comes_from_the_token_and_its_key_cannot_leave(tokens: Tokens,
                                                               demo_pki: DemoPki) -> None:
    identity = tokens.rsa.load()
    assert isinstance(identity.private_key, TokenRSAPrivateKey)
    assert demo_pki.first.organ_id in identity.subject
    assert [c.subject for c in identity.chain] == [
        x509.load_pem_x509_certificate(demo_pki.intermediate_cert.read_bytes()).subject]
    with pytest.raises(TypeError, match="stays in the token"):
        identity.private_key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    ec_identity = tokens.ec.load()
    assert isinstance(ec_identity.private_key, TokenECPrivateKey)
    with pytest.raises(TypeError, match="stays in the token"):
        ec_identity.private_key.private_numbers()
    assert tokens.rsa.load() is identity  # loaded once per process


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_pdf_sealed_by_the_token_verifies(kind: str, tokens: Tokens, plain_pdf: bytes,
                                          trust_store: TrustStore, tmp_path: Path) -> None:
    source = tokens.rsa if kind == "rsa" else tokens.ec
    sealed = seal_pdf(plain_pdf, source, stamp=StampOptions(visible=True))
    report = verify_pdf(sealed, trust_store)
    [signature] = report.signatures
    assert signature.ok, signature.problem
    assert signature.organ_id == DEMO_AGENCIES[0 if kind == "rsa" else 1].organ_id
    if PDFSIG is not None:
        path = tmp_path / "sealed.pdf"
        path.write_bytes(sealed)
        done = subprocess.run([PDFSIG, "-nocert", str(path)], capture_output=True, text=True,
                              timeout=60, check=False)
        assert "Signature Validation: Signature is Valid." in done.stdout, done.stdout


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_package_signed_by_the_token_verifies(kind: str, tokens: Tokens, demo_pki: DemoPki,
                                              trust_store: TrustStore, tmp_path: Path) -> None:
    source = tokens.rsa if kind == "rsa" else tokens.ec
    package = build_package(edoc())
    signed = xmldsig.PackageSigner(source.load()).sign(package)
    verified = xmldsig.verify_package(signed, trust_store, legacy_policy="refuse")
    assert verified.signer_organ_id == DEMO_AGENCIES[0 if kind == "rsa" else 1].organ_id
    if XMLSEC1 is not None:
        target = tmp_path / "signed.edxml"
        target.write_bytes(signed)
        done = subprocess.run(
            [XMLSEC1, "--verify", "--trusted-pem", str(demo_pki.root_cert),
             "--untrusted-pem", str(demo_pki.intermediate_cert), str(target)],
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr


def _generation(source: TokenKeySource) -> int:
    return pkcs11_token.run(source.token, lambda state: state.generation)


def test_one_session_serves_many_documents(tokens: Tokens, plain_pdf: bytes) -> None:
    identity = tokens.rsa.load()
    before = _generation(tokens.rsa)
    signer = xmldsig.PackageSigner(identity)
    for _ in range(3):
        signer.sign(build_package(edoc()))
        seal_pdf(plain_pdf, identity)
    assert _generation(tokens.rsa) == before


def test_a_removed_token_makes_signing_wait_until_it_is_back(
        tokens: Tokens, plain_pdf: bytes, trust_store: TrustStore, tmp_path: Path) -> None:
    identity = tokens.rsa.load()
    package = build_package(edoc())
    signer = xmldsig.PackageSigner(identity)
    signer.sign(package)
    folders = tokens.hsm.token_folders()
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    for folder in folders:  # every token of the module goes: the "HSM" is unplugged
        shutil.move(folder, pulled / folder.name)
    try:
        with pytest.raises(UnavailableError) as info:
            signer.sign(package)
        assert info.value.reason == "token_unavailable"
        assert "org-a" in info.value.message
        with pytest.raises(UnavailableError):
            seal_pdf(plain_pdf, identity)
    finally:
        for folder in folders:
            shutil.move(pulled / folder.name, folder)
    signed = signer.sign(package)  # the same identity and signer carry on
    assert xmldsig.verify_package(signed, trust_store, legacy_policy="refuse").signed
    assert verify_pdf(seal_pdf(plain_pdf, identity), trust_store).signatures[0].ok


def test_a_finalised_module_is_reopened_transparently(tokens: Tokens, plain_pdf: bytes) -> None:
    identity = tokens.ec.load()
    before = _generation(tokens.ec)
    pkcs11_token.close_all()  # every session gone, the module finalised
    seal_pdf(plain_pdf, identity)
    xmldsig.PackageSigner(identity).sign(build_package(edoc()))
    assert _generation(tokens.ec) > before


def test_a_refused_pin_is_not_tried_again(tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_TEST_WRONG_PIN", "0000-0000")
    source = TokenKeySource(TokenSpec(tokens.hsm.module, tokens.spare_label,
                                      pin_env="CONNECTOR_TEST_WRONG_PIN"), key_label="seal")
    for _ in range(2):
        with pytest.raises(UnavailableError) as info:
            source.load()
        assert info.value.reason == "token_pin_refused"
    assert "not trying the same PIN again" in info.value.message
    monkeypatch.setenv("CONNECTOR_TEST_WRONG_PIN", PIN)  # corrected: tried, logs in
    with pytest.raises(ConfigurationError) as missing:
        source.load()
    assert missing.value.reason == "token_cert_missing"  # the spare token is empty


def test_an_absent_token_label_waits(tokens: Tokens) -> None:
    source = TokenKeySource(TokenSpec(tokens.hsm.module, "no-such-token", pin_env=PIN_ENV),
                            key_label="seal")
    with pytest.raises(UnavailableError) as info:
        source.load()
    assert info.value.reason == "token_unavailable"


def test_a_key_that_does_not_match_its_certificate_is_refused(tokens: Tokens,
                                                              demo_pki: DemoPki) -> None:
    source = TokenKeySource(tokens.rsa.token, key_label="seal",
                            cert_file=demo_pki.first.seal.cert)  # same subject, other key
    with pytest.raises(ConfigurationError) as info:
        source.load()
    assert info.value.reason == "key_cert_mismatch"


def test_a_missing_module_is_a_configuration_error(tmp_path: Path) -> None:
    source = TokenKeySource(TokenSpec(tmp_path / "nothing.so", "org-a"), key_label="seal")
    with pytest.raises(ConfigurationError) as info:
        source.load()
    assert info.value.reason == "token_module"


def _seal_in_worker(source: TokenKeySource, pdf: bytes) -> bytes:
    return seal_pdf(pdf, source)


def test_worker_processes_open_their_own_session(tokens: Tokens, plain_pdf: bytes,
                                                 trust_store: TrustStore) -> None:
    """The source is pickled to a spawned process, which opens the token itself."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        sealed = pool.submit(_seal_in_worker, tokens.rsa, plain_pdf).result(timeout=120)
    assert verify_pdf(sealed, trust_store).signatures[0].ok


def test_file_identities_are_untouched(seal_a: SigningIdentity, plain_pdf: bytes,
                                       trust_store: TrustStore) -> None:
    assert verify_pdf(seal_pdf(plain_pdf, seal_a), trust_store).signatures[0].ok


def test_the_keys_component_follows_the_token(tokens: Tokens, tmp_path: Path) -> None:
    pkcs11_token.close_all()  # forget the tokens that earlier tests made fail on purpose
    states: list[bool] = []
    stop = pkcs11_token.watch(states.append)
    try:
        identity = tokens.ec.load()
        folders = tokens.hsm.token_folders()
        for folder in folders:
            shutil.move(folder, tmp_path / folder.name)
        try:
            with pytest.raises(UnavailableError):
                xmldsig.PackageSigner(identity).sign(build_package(edoc()))
        finally:
            for folder in folders:
                shutil.move(tmp_path / folder.name, folder)
        xmldsig.PackageSigner(identity).sign(build_package(edoc()))
    finally:
        stop()
    assert states == [False, True]


def test_the_readiness_probe_touches_the_token(tokens: Tokens, tmp_path: Path) -> None:
    assert pkcs11_token.probe(tokens.rsa.token) == (True, f"{tokens.rsa.token.describe()} answers")
    folders = tokens.hsm.token_folders()
    for folder in folders:
        shutil.move(folder, tmp_path / folder.name)
    try:
        up, detail = pkcs11_token.probe(tokens.rsa.token)
        assert not up and "org-a" in detail
    finally:
        for folder in folders:
            shutil.move(tmp_path / folder.name, folder)
    assert pkcs11_token.probe(tokens.rsa.token)[0]


# ------------------------------------------------------------------------- configuration


def test_configuration_names_a_token_key(tokens: Tokens, demo_pki: DemoPki) -> None:
    from connector.config_schema import KeyConfig
    from connector.daemon.wiring import key_source

    config = KeyConfig.model_validate({
        "pkcs11": {"module": str(tokens.hsm.module), "token_label": "org-a",
                   "key_label": "seal", "key_id": "01", "pin_env": PIN_ENV},
        "chain": [str(demo_pki.intermediate_cert)],
    })
    source = key_source(config)
    assert source == TokenKeySource(TokenSpec(tokens.hsm.module, "org-a", pin_env=PIN_ENV),
                                    key_label="seal", key_id=b"\x01",
                                    chain=(demo_pki.intermediate_cert,))
    assert source.load().certificate == tokens.rsa.load().certificate


@pytest.mark.parametrize("section, problem", [
    ({"pkcs11": {"module": "/x.so", "token_label": "t"}}, "key_label or key_id"),
    ({"pkcs11": {"module": "/x.so", "token_label": "t", "key_label": "k",
                 "cert_label": "c", "cert_file": "/c.pem"}}, "not both"),
    ({"pkcs11": {"module": "/x.so", "token_label": "t", "key_label": "k",
                 "pin_env": "A", "pin_file": "/p"}}, "not both"),
    ({"pkcs11": {"module": "/x.so", "token_label": "t", "key_label": "k"},
      "key": "/k.pem"}, "takes no key"),
    ({"pkcs11": {"module": "/x.so", "token_label": "t", "key_id": "xyz"}}, "pattern"),
    ({}, "give key"),
])
def test_token_key_configuration_errors(section: dict[str, object], problem: str) -> None:
    from pydantic import ValidationError

    from connector.config_schema import KeyConfig

    with pytest.raises(ValidationError, match=problem):
        KeyConfig.model_validate(section)
