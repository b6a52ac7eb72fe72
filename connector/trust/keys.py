"""Key material: load signing keys and certificates once and keep them for the process's life.

Keys come from PEM files (PKCS#8 or traditional, optionally encrypted) or PKCS#12 bundles;
certificates from PEM (one or several) or DER files. A password is never a configuration value:
it is read from an environment variable *named* in the configuration, or from a file (first
line, trailing newline stripped). Loading an RSA key costs tens of milliseconds, so loaded
identities are cached by (path, modification time, password source); a rotated key file is
picked up on the next load.

Failures raise :class:`~connector.errors.ConfigurationError` saying what was being loaded, from
where and why; passwords never appear in messages. This module must not validate certificate
chains (that is :mod:`connector.trust.truststore`) nor sign anything.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from connector.errors import ConfigurationError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
"""The private key kinds the connector signs and decrypts with."""

_PKCS12_SUFFIXES = (".p12", ".pfx")


@dataclass(frozen=True)
class SigningIdentity:
    """A private key, its certificate and the intermediates needed to chain it to a root.

    ``source`` says where it was loaded from (for messages and logs).
    """

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    source: str = ""

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def days_left(self, now: dt.datetime | None = None) -> float:
        """Days until the certificate expires (negative once expired)."""
        return days_left(self.certificate, now)


def days_left(certificate: x509.Certificate, now: dt.datetime | None = None) -> float:
    """Days (fractional) until ``certificate`` expires; negative once it has expired."""
    moment = now or dt.datetime.now(dt.UTC)
    remaining = certificate.not_valid_after_utc - moment
    return remaining.total_seconds() / 86400.0


def read_password(
    *, password_env: str | None = None, password_file: str | Path | None = None, what: str = "key"
) -> bytes | None:
    """The password named by an environment variable or stored in a file, or ``None``.

    Giving both sources is a configuration error, as is naming an unset variable or an
    unreadable file. The file's first line is used, without its line ending.
    """
    if password_env and password_file:
        raise ConfigurationError(
            f"password for {what}: give either an environment variable or a file, not both",
            reason="password_source",
        )
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise ConfigurationError(
                f"password for {what}: environment variable {password_env} is not set",
                reason="password_missing",
            )
        return value.encode("utf-8")
    if password_file:
        path = Path(password_file)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"password for {what}: cannot read password file {path}: {exc.strerror}",
                reason="password_missing",
            ) from exc
        first_line = text.splitlines()[0] if text else b""
        return first_line
    return None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {what} {path}: {exc.strerror or exc}", reason="file_missing"
        ) from exc


def parse_certificates(data: bytes, where: str = "certificate data") -> list[x509.Certificate]:
    """All certificates in PEM (any number) or DER (one) ``data``; at least one is required."""
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(
            f"{where} is not a PEM or DER X.509 certificate: {exc}", reason="cert_invalid"
        ) from exc
    if not certificates:
        raise ConfigurationError(f"{where} holds no certificate", reason="cert_invalid")
    return certificates


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle or a single DER file."""
    file_path = Path(path)
    return parse_certificates(_read(file_path, "certificate file"), f"certificate file {file_path}")


def load_certificate(path: str | Path) -> x509.Certificate:
    """The first certificate of a PEM or DER file."""
    return load_certificates(path)[0]


def _check_key_kind(key: object, where: str) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    kind = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else type(key).__name__
    raise ConfigurationError(
        f"{where}: {kind} keys are not supported (use RSA or EC)", reason="key_unsupported"
    )


def load_private_key(path: str | Path, password: bytes | None = None) -> PrivateKey:
    """Load a PEM or DER private key (not cached; prefer :func:`load_identity`)."""
    file_path = Path(path)
    data = _read(file_path, "private key file")
    where = f"private key file {file_path}"
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError as exc:
        # cryptography says TypeError when a password is missing or superfluous
        needs = "is encrypted but no password was configured" if password is None else (
            "is not encrypted but a password was configured"
        )
        raise ConfigurationError(f"{where} {needs}", reason="key_password") from exc
    except ValueError as exc:
        reason = "key_password" if password is not None else "key_invalid"
        raise ConfigurationError(
            f"{where} cannot be loaded: wrong password or not a PEM/DER private key",
            reason=reason,
        ) from exc
    return _check_key_kind(key, where)


def _public_bytes(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_pair(key: PrivateKey, certificate: x509.Certificate, where: str) -> None:
    if _public_bytes(key.public_key()) != _public_bytes(certificate.public_key()):
        raise ConfigurationError(
            f"{where}: the private key does not belong to certificate "
            f"{certificate.subject.rfc4514_string()}",
            reason="key_cert_mismatch",
        )


def _order_chain(
    leaf: x509.Certificate, others: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """Others without the leaf and duplicates, issuer order first where it can be found."""
    remaining = [c for c in others if c != leaf]
    ordered: list[x509.Certificate] = []
    current = leaf
    while remaining:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None:
            break
        ordered.append(issuer)
        remaining.remove(issuer)
        current = issuer
    unique: list[x509.Certificate] = []
    for cert in ordered + remaining:
        if cert not in unique:
            unique.append(cert)
    return tuple(unique)


def _load_pkcs12(
    path: Path, password: bytes | None
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    where = f"PKCS#12 file {path}"
    try:
        bundle = pkcs12.load_pkcs12(_read(path, "PKCS#12 file"), password)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{where} cannot be opened: wrong password or not a PKCS#12 file", reason="key_password"
        ) from exc
    if bundle.key is None or bundle.cert is None:
        raise ConfigurationError(
            f"{where} must hold a private key and its certificate", reason="key_invalid"
        )
    key = _check_key_kind(bundle.key, where)
    return key, bundle.cert.certificate, [c.certificate for c in bundle.additional_certs]


_cache: dict[tuple[object, ...], SigningIdentity] = {}
_cache_lock = threading.Lock()


def _stamp(path: Path) -> tuple[str, int]:
    try:
        return str(path.resolve()), path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read key material {path}: {exc.strerror or exc}", reason="file_missing"
        ) from exc


def load_identity(
    key: str | Path,
    cert: str | Path | None = None,
    chain: Sequence[str | Path] = (),
    *,
    password_env: str | None = None,
    password_file: str | Path | None = None,
) -> SigningIdentity:
    """Load (once per process) a signing identity.

    ``key`` is a PEM/DER private key file, with ``cert`` its certificate file (which may also
    contain intermediates), or a PKCS#12 file (``.p12``/``.pfx``; ``cert`` then optional). ``chain``
    names extra files of intermediate certificates. The key must match the certificate.
    """
    key_path = Path(key)
    cert_path = Path(cert) if cert is not None else None
    chain_paths = tuple(Path(p) for p in chain)
    cache_key: tuple[object, ...] = (
        _stamp(key_path),
        _stamp(cert_path) if cert_path else None,
        tuple(_stamp(p) for p in chain_paths),
        password_env,
        str(password_file) if password_file else None,
    )
    with _cache_lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached

    password = read_password(
        password_env=password_env, password_file=password_file, what=str(key_path)
    )
    extra: list[x509.Certificate] = []
    if key_path.suffix.lower() in _PKCS12_SUFFIXES:
        private_key, certificate, extra = _load_pkcs12(key_path, password)
        if cert_path is not None:
            extra = load_certificates(cert_path) + extra
    else:
        if cert_path is None:
            raise ConfigurationError(
                f"private key {key_path}: a certificate file is required with a PEM/DER key",
                reason="cert_missing",
            )
        private_key = load_private_key(key_path, password)
        in_cert_file = load_certificates(cert_path)
        certificate, extra = in_cert_file[0], in_cert_file[1:]
    for path in chain_paths:
        extra.extend(load_certificates(path))
    _check_pair(private_key, certificate, str(key_path))
    identity = SigningIdentity(
        private_key=private_key,
        certificate=certificate,
        chain=_order_chain(certificate, extra),
        source=str(key_path),
    )
    with _cache_lock:
        _cache[cache_key] = identity
    return identity


@dataclass(frozen=True)
class KeySource:
    """Where an identity comes from: picklable, so worker processes can load it (once each)."""

    key: Path
    cert: Path | None = None
    chain: tuple[Path, ...] = ()
    password_env: str | None = None
    password_file: Path | None = None

    def load(self) -> SigningIdentity:
        return load_identity(
            self.key, self.cert, self.chain,
            password_env=self.password_env, password_file=self.password_file,
        )


class IdentitySource(Protocol):
    """Anything that loads a signing identity: a :class:`KeySource` (files) or a
    :class:`connector.trust.pkcs11_keys.TokenKeySource` (a key in a PKCS#11 token)."""

    def load(self) -> SigningIdentity: ...


def clear_cache() -> None:
    """Forget every loaded identity (tests, and an operator-triggered reload)."""
    with _cache_lock:
        _cache.clear()
