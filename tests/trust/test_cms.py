"""CMS AuthEnvelopedData: our envelopes against OpenSSL's, both ways, and every refusal."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509

from connector.errors import ConfigurationError, PermanentError
from connector.trust import cms
from connector.trust.keys import PrivateKey, load_certificate, load_private_key
from connector.trust.pki import DemoPki, KeyPair

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")

PLAINTEXT = "Công văn số 123/SNV-VP — nội dung mật mã hóa\n".encode() * 50


def _pair(pair: KeyPair) -> tuple[PrivateKey, x509.Certificate]:
    return load_private_key(pair.key), load_certificate(pair.cert)


@pytest.fixture(scope="module")
def rsa_recipient(demo_pki: DemoPki) -> KeyPair:
    return demo_pki.first.encryption  # agency A: RSA-2048


@pytest.fixture(scope="module")
def ec_recipient(demo_pki: DemoPki) -> KeyPair:
    return demo_pki.second.encryption  # agency B: EC P-256


@pytest.fixture(scope="module")
def envelope(rsa_recipient: KeyPair, ec_recipient: KeyPair) -> bytes:
    certs = [load_certificate(rsa_recipient.cert), load_certificate(ec_recipient.cert)]
    return cms.encrypt(PLAINTEXT, certs)


def _openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], input=stdin, capture_output=True,
                          timeout=60, check=False)


def _flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


def test_envelope_structure(envelope: bytes) -> None:
    info = asn1_cms.ContentInfo.load(envelope)
    assert info["content_type"].dotted == "1.2.840.113549.1.9.16.1.23"
    enveloped = info["content"]
    algorithm = enveloped["auth_encrypted_content_info"]["content_encryption_algorithm"]
    assert algorithm["algorithm"].native == "aes256_gcm"
    params = cms.GCMParameters.load(algorithm["parameters"].dump())
    assert len(params["aes_nonce"].native) == 12 and params["aes_icvlen"].native == 16
    kinds = sorted(ri.name for ri in enveloped["recipient_infos"])
    assert kinds == ["kari", "ktri"]
    for ri in enveloped["recipient_infos"]:
        if ri.name == "ktri":
            kea = ri.chosen["key_encryption_algorithm"]
            assert kea["algorithm"].native == "rsaes_oaep"
            assert kea["parameters"]["hash_algorithm"]["algorithm"].native == "sha256"
        else:
            kea = ri.chosen["key_encryption_algorithm"]
            assert kea["algorithm"].dotted == "1.3.132.1.11.1"  # stdDH-sha256kdf
    assert PLAINTEXT not in envelope
    assert len(cms.recipient_identifiers(envelope)) == 2


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_every_recipient_decrypts(envelope: bytes, which: str, rsa_recipient: KeyPair,
                                  ec_recipient: KeyPair) -> None:
    key, cert = _pair(rsa_recipient if which == "rsa" else ec_recipient)
    assert cms.decrypt(envelope, key, cert) == PLAINTEXT


def test_empty_and_large_contents(rsa_recipient: KeyPair) -> None:
    key, cert = _pair(rsa_recipient)
    for data in (b"", bytes(range(256)) * 4096):
        assert cms.decrypt(cms.encrypt(data, [cert]), key, cert) == data


@needs_openssl
@pytest.mark.tools
@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_openssl_decrypts_ours(envelope: bytes, tmp_path: Path, which: str,
                               rsa_recipient: KeyPair, ec_recipient: KeyPair) -> None:
    pair = rsa_recipient if which == "rsa" else ec_recipient
    source = tmp_path / "in.der"
    source.write_bytes(envelope)
    result = _openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", source,
                      "-inkey", pair.key, "-recip", pair.cert)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == PLAINTEXT


@needs_openssl
@pytest.mark.tools
@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_we_decrypt_openssl_aes_256_gcm(tmp_path: Path, which: str, rsa_recipient: KeyPair,
                                        ec_recipient: KeyPair) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(PLAINTEXT)
    out = tmp_path / "openssl.der"
    result = _openssl(
        "cms", "-encrypt", "-binary", "-aes-256-gcm", "-in", source, "-outform", "DER",
        "-out", out,
        "-recip", rsa_recipient.cert,
        "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256",
        "-recip", ec_recipient.cert, "-keyopt", "ecdh_kdf_md:sha256",
    )
    assert result.returncode == 0, result.stderr.decode()
    key, cert = _pair(rsa_recipient if which == "rsa" else ec_recipient)
    assert cms.decrypt(out.read_bytes(), key, cert) == PLAINTEXT


@needs_openssl
@pytest.mark.tools
@pytest.mark.parametrize("part", ["ciphertext", "tag", "nonce"])
def test_tampered_envelope_fails_on_both_sides(envelope: bytes, tmp_path: Path, part: str,
                                               rsa_recipient: KeyPair) -> None:
    info = asn1_cms.ContentInfo.load(envelope)
    enveloped = info["content"]
    content = enveloped["auth_encrypted_content_info"]
    if part == "ciphertext":
        needle = content["encrypted_content"].contents[100:116]
    elif part == "tag":
        needle = enveloped["mac"].native
    else:
        algorithm = content["content_encryption_algorithm"]
        needle = cms.GCMParameters.load(algorithm["parameters"].dump())["aes_nonce"].native
    tampered = _flip(envelope, envelope.index(needle) + 3)
    key, cert = _pair(rsa_recipient)
    with pytest.raises(PermanentError) as info_error:
        cms.decrypt(tampered, key, cert)
    assert info_error.value.reason == "decrypt_failed"
    source = tmp_path / "tampered.der"
    source.write_bytes(tampered)
    result = _openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", source,
                      "-inkey", rsa_recipient.key, "-recip", rsa_recipient.cert)
    # OpenSSL may still print the unauthenticated plaintext: only the exit code counts.
    assert result.returncode != 0


def test_tampered_encrypted_key_fails(envelope: bytes, rsa_recipient: KeyPair) -> None:
    enveloped = asn1_cms.ContentInfo.load(envelope)["content"]
    ktri = next(ri.chosen for ri in enveloped["recipient_infos"] if ri.name == "ktri")
    encrypted_key = ktri["encrypted_key"].native
    tampered = _flip(envelope, envelope.index(encrypted_key) + 40)
    key, cert = _pair(rsa_recipient)
    with pytest.raises(PermanentError) as info:
        cms.decrypt(tampered, key, cert)
    assert info.value.reason == "decrypt_failed"


def test_wrong_decryption_key_is_refused(demo_pki: DemoPki, rsa_recipient: KeyPair,
                                         ec_recipient: KeyPair) -> None:
    only_a = cms.encrypt(PLAINTEXT, [load_certificate(rsa_recipient.cert)])
    key, cert = _pair(ec_recipient)  # agency B's own, valid key: not a recipient
    with pytest.raises(PermanentError) as info:
        cms.decrypt(only_a, key, cert)
    assert info.value.reason == "decrypt_failed"
    assert "not addressed to" in info.value.message


def test_key_not_matching_certificate_is_a_configuration_error(
    envelope: bytes, demo_pki: DemoPki, rsa_recipient: KeyPair
) -> None:
    other_key = load_private_key(demo_pki.first.seal.key)
    with pytest.raises(ConfigurationError) as info:
        cms.decrypt(envelope, other_key, load_certificate(rsa_recipient.cert))
    assert info.value.reason == "key_cert_mismatch"


@needs_openssl
@pytest.mark.tools
@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_sha1_key_protection_is_refused(tmp_path: Path, which: str, rsa_recipient: KeyPair,
                                        ec_recipient: KeyPair) -> None:
    pair = rsa_recipient if which == "rsa" else ec_recipient
    options = ["-keyopt", "rsa_padding_mode:oaep"] if which == "rsa" else []  # SHA-1 defaults
    source = tmp_path / "plain.bin"
    source.write_bytes(b"x")
    out = tmp_path / "sha1.der"
    result = _openssl("cms", "-encrypt", "-binary", "-aes-256-gcm", "-in", source,
                      "-outform", "DER", "-out", out, "-recip", pair.cert, *options)
    assert result.returncode == 0, result.stderr.decode()
    key, cert = _pair(pair)
    with pytest.raises(PermanentError) as info:
        cms.decrypt(out.read_bytes(), key, cert)
    assert info.value.reason == "algorithm_not_allowed"
    assert "SHA-256" in info.value.message


@needs_openssl
@pytest.mark.tools
def test_unauthenticated_cbc_envelope_is_refused(tmp_path: Path, rsa_recipient: KeyPair) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(b"x")
    out = tmp_path / "cbc.der"
    result = _openssl("cms", "-encrypt", "-binary", "-aes-256-cbc", "-in", source,
                      "-outform", "DER", "-out", out, "-recip", rsa_recipient.cert)
    assert result.returncode == 0, result.stderr.decode()
    key, cert = _pair(rsa_recipient)
    with pytest.raises(PermanentError) as info:
        cms.decrypt(out.read_bytes(), key, cert)
    assert info.value.reason == "envelope_malformed"
    assert "AuthEnvelopedData" in info.value.message


@pytest.mark.parametrize("garbage", [b"", b"not der at all", b"\x30\x03\x02\x01\x00"])
def test_garbage_is_malformed(garbage: bytes, rsa_recipient: KeyPair) -> None:
    key, cert = _pair(rsa_recipient)
    with pytest.raises(PermanentError) as info:
        cms.decrypt(garbage, key, cert)
    assert info.value.reason == "envelope_malformed"


def test_certificate_without_encryption_usage_is_refused(demo_pki: DemoPki) -> None:
    signing_only = load_certificate(demo_pki.first.signer.cert)  # EC, digitalSignature only
    with pytest.raises(ConfigurationError) as info:
        cms.encrypt(b"x", [signing_only])
    assert info.value.reason == "wrong_key_usage"


def test_no_recipient_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        cms.encrypt(b"x", [])
