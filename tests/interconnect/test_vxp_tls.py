"""https to the hub: server verification against a CA file, and client certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from connector.errors import ConfigurationError
from connector.hub import HubEmulator
from connector.hub.config import TlsSettings
from connector.interconnect import Secret, VxpClient, VxpSettings
from tests.hub.harness import SECRETS, SYSTEMS, A, edoc_bytes, hub_config


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(
    path: Path,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey | None,
    password: bytes | None = None,
) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("Test hub CA", None, ca=True)
    _write(folder / "ca", ca_cert, None)
    server_cert, server_key = _issue("hub.test", (ca_cert.subject, ca_key), server=True)
    _write(folder / "server", server_cert, server_key)
    client_cert, client_key = _issue("agency-a", (ca_cert.subject, ca_key))
    _write(folder / "client", client_cert, client_key, password=b"key-password")
    other_ca, _ = _issue("Some other CA", None, ca=True)
    _write(folder / "other-ca", other_ca, None)
    return folder


@pytest.fixture
def tls_hub(pki: Path, tmp_path: Path) -> Iterator[HubEmulator]:
    tls = TlsSettings(
        cert_file=pki / "server.crt",
        key_file=pki / "server.key",
        client_ca_file=pki / "ca.crt",
    )
    with HubEmulator(hub_config(tmp_path / "hub.sqlite", tls=tls)) as hub:
        yield hub


def _settings(url: str, **extra: object) -> VxpSettings:
    return VxpSettings(
        endpoint=url,
        systemid=SYSTEMS[A],
        secret=SECRETS[SYSTEMS[A]],
        **extra,  # type: ignore[arg-type]
    )


def test_https_with_client_certificate(tls_hub: HubEmulator, pki: Path) -> None:
    assert tls_hub.url.startswith("https://")
    settings = _settings(
        tls_hub.url,
        ca_file=str(pki / "ca.crt"),
        client_cert=str(pki / "client.crt"),
        client_key=str(pki / "client.key"),
        client_key_password=Secret("key-password"),
    )
    with VxpClient(settings) as client:
        client.send(edoc_bytes(), message_type="edoc", sender=A)
        assert len(client.directory()) == 3
    assert len(tls_hub.packages()) == 1


def test_untrusted_hub_certificate_is_a_configuration_error(
    tls_hub: HubEmulator, pki: Path
) -> None:
    client = VxpClient(_settings(tls_hub.url, ca_file=str(pki / "other-ca.crt")))
    with client, pytest.raises(ConfigurationError) as refused:
        client.pending("edoc")
    assert refused.value.reason == "hub_tls"
    assert "TLS verification failed: hub certificate not trusted" in str(refused.value)


def test_missing_client_certificate_is_a_configuration_error(
    tls_hub: HubEmulator, pki: Path
) -> None:
    client = VxpClient(_settings(tls_hub.url, ca_file=str(pki / "ca.crt")))
    with client, pytest.raises(ConfigurationError) as refused:
        client.pending("edoc")
    assert refused.value.reason == "hub_tls"
    assert "the TLS handshake was refused" in str(refused.value)


def test_bad_key_password_is_a_configuration_error_without_the_password(pki: Path) -> None:
    settings = _settings(
        "https://127.0.0.1:1",
        ca_file=str(pki / "ca.crt"),
        client_cert=str(pki / "client.crt"),
        client_key=str(pki / "client.key"),
        client_key_password=Secret("wrong-password-xyz"),
    )
    with pytest.raises(ConfigurationError) as refused:
        VxpClient(settings)
    assert refused.value.reason == "hub_tls"
    assert "wrong-password-xyz" not in str(refused.value)
