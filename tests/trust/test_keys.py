"""Loading keys and certificates: PEM, PKCS#12, password sources, caching, clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from connector.errors import ConfigurationError
from connector.trust import keys
from connector.trust.pki import DemoPki


def test_pem_identity_with_chain(demo_pki: DemoPki) -> None:
    agency = demo_pki.first
    identity = keys.load_identity(agency.seal.key, agency.seal.cert, [agency.chain])
    assert identity.certificate == keys.load_certificate(agency.seal.cert)
    assert identity.chain == (keys.load_certificate(demo_pki.intermediate_cert),)
    assert 700 < identity.days_left() < 731


def test_identity_is_cached_per_process(demo_pki: DemoPki) -> None:
    agency = demo_pki.second
    first = keys.load_identity(agency.signer.key, agency.signer.cert)
    again = keys.load_identity(agency.signer.key, agency.signer.cert)
    assert again is first
    keys.clear_cache()
    assert keys.load_identity(agency.signer.key, agency.signer.cert) is not first


def test_pkcs12_with_password_file(demo_pki: DemoPki) -> None:
    agency = demo_pki.first
    identity = keys.load_identity(agency.seal_p12, password_file=agency.seal_p12_password_file)
    assert identity.certificate == keys.load_certificate(agency.seal.cert)
    assert len(identity.chain) == 1


def test_pkcs12_with_password_env(demo_pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> None:
    agency = demo_pki.second
    password = agency.seal_p12_password_file.read_text().strip()
    monkeypatch.setenv("TEST_SEAL_PASSWORD", password)
    identity = keys.load_identity(agency.seal_p12, password_env="TEST_SEAL_PASSWORD")
    assert identity.certificate == keys.load_certificate(agency.seal.cert)


def test_wrong_password_is_a_configuration_error_without_the_password(
    demo_pki: DemoPki, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.password"
    bad.write_text("not-the-password-xyz\n")
    with pytest.raises(ConfigurationError) as caught:
        keys.load_identity(demo_pki.first.seal_p12, password_file=bad)
    assert caught.value.reason == "key_password"
    assert str(demo_pki.first.seal_p12) in caught.value.message
    assert "not-the-password-xyz" not in caught.value.message


def test_unset_password_variable(demo_pki: DemoPki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    with pytest.raises(ConfigurationError, match="NO_SUCH_PASSWORD_VAR is not set") as caught:
        keys.load_identity(demo_pki.first.seal_p12, password_env="NO_SUCH_PASSWORD_VAR")
    assert caught.value.reason == "password_missing"


def test_encrypted_pem_key_needs_password(demo_pki: DemoPki, tmp_path: Path) -> None:
    key = keys.load_private_key(demo_pki.second.signer.key)
    encrypted = tmp_path / "signer-encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    ))
    with pytest.raises(ConfigurationError, match="encrypted but no password") as caught:
        keys.load_identity(encrypted, demo_pki.second.signer.cert)
    assert caught.value.reason == "key_password"
    (tmp_path / "pw").write_text("s3cret\n")
    identity = keys.load_identity(encrypted, demo_pki.second.signer.cert,
                                  password_file=tmp_path / "pw")
    assert identity.certificate == keys.load_certificate(demo_pki.second.signer.cert)


def test_key_not_matching_certificate(demo_pki: DemoPki) -> None:
    with pytest.raises(ConfigurationError, match="does not belong") as caught:
        keys.load_identity(demo_pki.first.signer.key, demo_pki.second.signer.cert)
    assert caught.value.reason == "key_cert_mismatch"


def test_missing_files_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        keys.load_identity(tmp_path / "absent.key", tmp_path / "absent.pem")
    assert caught.value.reason == "file_missing"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match=str(garbage)) as caught:
        keys.load_certificate(garbage)
    assert caught.value.reason == "cert_invalid"


def test_days_left_negative_when_expired(demo_pki: DemoPki) -> None:
    expired = keys.load_certificate(demo_pki.expired.cert)
    assert keys.days_left(expired) < -29
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
    assert keys.days_left(keys.load_certificate(demo_pki.first.seal.cert), later) < 0
