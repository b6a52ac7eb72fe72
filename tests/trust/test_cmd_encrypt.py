"""``connector encrypt`` / ``connector decrypt`` through the command table."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from connector.cli import main
from connector.trust.keys import load_certificate, load_private_key
from connector.trust.pki import DemoPki

OPENSSL = shutil.which("openssl")
PLAINTEXT = "Tờ trình số 5/TTr-STC\n".encode() * 100


@pytest.fixture()
def plain_file(tmp_path: Path) -> Path:
    path = tmp_path / "to-trinh.pdf"
    path.write_bytes(PLAINTEXT)
    return path


@pytest.fixture()
def envelope(demo_pki: DemoPki, plain_file: Path, tmp_path: Path) -> Path:
    out = tmp_path / "to-trinh.pdf.p7m"
    assert main(["encrypt", str(plain_file), str(out),
                 "--cert", str(demo_pki.first.encryption.cert),
                 "--cert", str(demo_pki.second.encryption.cert)]) == 0
    return out


@pytest.mark.parametrize("agency", ["first", "second"], ids=["rsa", "ec"])
def test_encrypt_then_decrypt_for_each_recipient(agency: str, demo_pki: DemoPki, envelope: Path,
                                                 tmp_path: Path) -> None:
    pair = getattr(demo_pki, agency).encryption
    out = tmp_path / "plain.out"
    assert main(["decrypt", str(envelope), str(out), "--key", str(pair.key),
                 "--cert", str(pair.cert)]) == 0
    assert out.read_bytes() == PLAINTEXT
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_pkcs12_key_with_password_from_environment(
    demo_pki: DemoPki, envelope: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = demo_pki.second.encryption
    bundle = tmp_path / "encryption.p12"
    key = load_private_key(pair.key)
    bundle.write_bytes(pkcs12.serialize_key_and_certificates(
        b"enc", key, load_certificate(pair.cert), None,
        serialization.BestAvailableEncryption(b"correct horse")))
    monkeypatch.setenv("TEST_P12_PASSWORD", "correct horse")
    out = tmp_path / "plain.out"
    assert main(["decrypt", str(envelope), str(out), "--key", str(bundle),
                 "--password-env", "TEST_P12_PASSWORD"]) == 0
    assert out.read_bytes() == PLAINTEXT


def test_wrong_key_fails_without_output(demo_pki: DemoPki, plain_file: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    only_a = tmp_path / "only-a.p7m"
    assert main(["encrypt", str(plain_file), str(only_a),
                 "--cert", str(demo_pki.first.encryption.cert)]) == 0
    pair = demo_pki.second.encryption
    out = tmp_path / "plain.out"
    assert main(["decrypt", str(only_a), str(out), "--key", str(pair.key),
                 "--cert", str(pair.cert)]) == 1
    assert "[decrypt_failed]" in capsys.readouterr().err
    assert not out.exists()


def test_tampered_envelope_fails(demo_pki: DemoPki, envelope: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(envelope.read_bytes())
    data[-40] ^= 0x01  # inside the ciphertext
    envelope.write_bytes(bytes(data))
    pair = demo_pki.first.encryption
    out = tmp_path / "plain.out"
    assert main(["decrypt", str(envelope), str(out), "--key", str(pair.key),
                 "--cert", str(pair.cert)]) == 1
    assert "[decrypt_failed]" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
@pytest.mark.tools
def test_pem_output_is_read_by_openssl_and_by_us(demo_pki: DemoPki, plain_file: Path,
                                                 tmp_path: Path) -> None:
    assert OPENSSL is not None
    pem = tmp_path / "out.pem"
    pair = demo_pki.second.encryption
    assert main(["encrypt", str(plain_file), str(pem), "--cert", str(pair.cert), "--pem"]) == 0
    assert pem.read_bytes().startswith(b"-----BEGIN CMS-----")
    result = subprocess.run(
        [OPENSSL, "cms", "-decrypt", "-binary", "-inform", "PEM", "-in", str(pem),
         "-inkey", str(pair.key), "-recip", str(pair.cert)],
        capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == PLAINTEXT
    out = tmp_path / "plain.out"
    assert main(["decrypt", str(pem), str(out), "--key", str(pair.key),
                 "--cert", str(pair.cert)]) == 0
    assert out.read_bytes() == PLAINTEXT


def test_usage_errors(demo_pki: DemoPki, plain_file: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["encrypt", str(plain_file), str(tmp_path / "x")])  # no --cert
    assert info.value.code == 2
    assert main(["encrypt", str(tmp_path / "absent"), str(tmp_path / "x"),
                 "--cert", str(demo_pki.first.encryption.cert)]) == 1
    assert main(["encrypt", str(plain_file), str(tmp_path / "x"),
                 "--cert", str(demo_pki.first.signer.cert)]) == 1  # not an encryption cert
